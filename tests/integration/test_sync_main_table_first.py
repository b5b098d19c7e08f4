"""`main_table_first = true` (issue 12 §8): `from all lookup main
suppress_prefixlength 0`, marked and owned, just before the ENI rules, so a
reply to a container bridge (docker0, cni0) or a VPN route in `main` stays
on the host instead of following an ENI rule out through the ENI.

The "container" is a fourth namespace behind a veth whose guest end holds
172.17.0.1/16, as docker0 would: the kernel's connected route for it is in
`main`. The container connects to a service on an ENI address; the reply
leaves from that address, so without the option the ENI rule sends it out
through eth1 (to the router, which cannot reach 172.17/16): no handshake.
"""

from __future__ import annotations

import pytest

from tests.harness.agent import Agent, write_config
from tests.harness.commands import ip
from tests.harness.enis import make_eni, primary_eni
from tests.harness.kernel import ip_json, owned_rules, table_of
from tests.harness.namespaces import create_namespace, delete_namespace
from tests.harness.prober import outbound_handshake, tcp_handshake

BRIDGE_IP, CONTAINER_IP = "172.17.0.1", "172.17.0.2"
# as `ip -N -j rule` prints it
MAIN_FIRST = {"priority": 9999, "src": "all", "table": "254", "suppress_prefixlen": 0,
              "protocol": "234"}


@pytest.fixture
def container(topology_factory):
    """(topology with eth1, the container's namespace)."""
    t = topology_factory([make_eni(1)])
    ctr = create_namespace("ctr", t.tag)
    try:
        ip(t.guest, "link", "add", "veth-ctr", "type", "veth", "peer", "name", "eth0",
           "netns", ctr)
        ip(t.guest, "addr", "add", f"{BRIDGE_IP}/16", "dev", "veth-ctr")
        ip(t.guest, "link", "set", "veth-ctr", "up")
        ip(ctr, "addr", "add", f"{CONTAINER_IP}/16", "dev", "eth0")
        ip(ctr, "link", "set", "eth0", "up")
        ip(ctr, "route", "add", "default", "via", BRIDGE_IP)
        yield t, ctr
    finally:
        delete_namespace(ctr)


def tx_packets(ns: str, ifname: str) -> int:
    (link,) = ip_json(ns, "-s", "link", "show", ifname)
    return link["stats64"]["tx"]["packets"]


def main_first_rules(t) -> list[dict]:
    return [r for r in owned_rules(t) if r.get("table") == "254"]


def container_reaches(t, ctr, eni_ip: str) -> bool:
    return tcp_handshake(t.guest, eni_ip, ctr, timeout=1.5)


def test_replies_to_a_container_stay_local_only_with_main_table_first(container, tmp_path):
    t, ctr = container
    eni_ip = t.eni("eth1").ips[0]
    agent = Agent(t, tmp_path)
    agent.write()
    on = write_config(tmp_path / "on.toml", "main_table_first = true\n")

    agent.converge()  # the option off: the reply follows the ENI rule out of eth1
    before = tx_packets(t.guest, "eth1")
    assert not container_reaches(t, ctr, eni_ip)
    assert tx_packets(t.guest, "eth1") > before
    assert main_first_rules(t) == []

    res = agent.converge("--config", on)
    assert main_first_rules(t) == [MAIN_FIRST], ip_json(t.guest, "-N", "rule")
    assert res.json["host_changes"] == [
        "add rule 9999: from all lookup main suppress_prefixlength 0"]
    assert container_reaches(t, ctr, eni_ip)
    # the ENI still answers the world through eth1 (main's default is suppressed)
    assert outbound_handshake(t, eni_ip)

    status = agent.status("--json", "--config", on)
    assert status.code == 0 and status.json["host_changes"] == [], str(status)

    agent.converge()  # turned off: the agent takes its rule away
    assert main_first_rules(t) == []
    assert not container_reaches(t, ctr, eni_ip)
    assert len(owned_rules(t)) == 2 and table_of(t, "eth1")


def test_cleanup_removes_the_rule_and_a_foreign_twin_is_never_touched(container, tmp_path):
    t, _ = container
    agent = Agent(t, tmp_path)
    agent.write()
    on = write_config(tmp_path / "on.toml", "main_table_first = true\n")
    # someone else's identical rule (no mark) at another priority
    ip(t.guest, "rule", "add", "lookup", "main", "suppress_prefixlength", "0", "priority", "500")
    agent.converge("--config", on)
    assert main_first_rules(t) == [MAIN_FIRST]

    res = agent.cleanup("--json", "--config", on)
    assert res.code == 0, str(res)
    assert "remove rule 9999: from all lookup main suppress_prefixlength 0" in \
        res.json["host_changes"]
    assert owned_rules(t) == []
    assert [r["priority"] for r in ip_json(t.guest, "rule")
            if r.get("suppress_prefixlen") == 0] == [500]


def test_rule_priority_1_leaves_no_room(container, tmp_path):
    t, _ = container
    agent = Agent(t, tmp_path)
    agent.write()
    bad = write_config(tmp_path / "bad.toml", "main_table_first = true\nrule_priority = 1\n")
    res = agent.sync("--config", bad)
    assert res.code == 4 and "rule_priority" in res.stderr, str(res)
    assert owned_rules(t) == []


def test_the_trade_off_peers_in_the_primarys_vswitch_and_the_narrow_alternative(container,
                                                                                 tmp_path):
    """With the option, a reply to a peer in the primary's vswitch (here the
    router's 10.0.0.253) follows main's connected route out of eth0 with the
    ENI's source, and the VPC's source check (the router's strict rp_filter)
    drops it. The alternative in docs/containers.md, a `to <bridge subnet> lookup main`
    rule of the operator's own, keeps both working (and eni-agent leaves it
    alone)."""
    t, ctr = container
    eni_ip = t.eni("eth1").ips[0]
    agent = Agent(t, tmp_path)
    agent.write()
    on = write_config(tmp_path / "on.toml", "main_table_first = true\n")

    def peer_in_primary_vswitch_reaches() -> bool:
        return tcp_handshake(t.guest, eni_ip, t.router, client_source=t.primary.gateway,
                             timeout=1.5)

    agent.converge()
    assert peer_in_primary_vswitch_reaches()
    agent.converge("--config", on)
    assert not peer_in_primary_vswitch_reaches()
    assert container_reaches(t, ctr, eni_ip)

    agent.converge()  # off, and the operator's narrow rule instead
    ip(t.guest, "rule", "add", "to", "172.17.0.0/16", "lookup", "main", "priority", "9000")
    agent.converge()
    assert peer_in_primary_vswitch_reaches()
    assert container_reaches(t, ctr, eni_ip)
    assert [r["priority"] for r in ip_json(t.guest, "rule") if r.get("dst") == "172.17.0.0"] \
        == [9000]


def test_an_ipv6_eni_gets_the_ipv6_rule_too_and_still_answers_through_its_eni(
        topology_factory, tmp_path):
    t = topology_factory([make_eni(1, n_ipv6=1)], ipv6=True, primary=primary_eni(ipv6=True))
    agent = Agent(t, tmp_path)
    agent.write()
    on = write_config(tmp_path / "on.toml", "main_table_first = true\n")

    agent.converge("--config", on)

    rule6 = [r for r in ip_json(t.guest, "-6", "-N", "rule") if r.get("protocol") == "234"
             and r.get("table") == "254"]
    assert rule6 == [MAIN_FIRST]
    assert outbound_handshake(t, t.eni("eth1").ipv6s[0])
    assert outbound_handshake(t, t.eni("eth1").ips[0])
    agent.converge()
    assert [r for r in ip_json(t.guest, "-6", "-N", "rule") if r.get("table") == "254"
            and r.get("protocol") == "234"] == []
