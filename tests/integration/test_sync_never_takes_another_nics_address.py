"""An ENI whose metadata lists an address another NIC of the host holds (the
primary's DHCP address, 10.0.0.5 on eth0) never gets it: `sync` exits 4 with
one stderr line naming the ENI, the field, the address and eth0; the ENI is
left as it is (nothing added to eth1, no `from 10.0.0.5` rule); the primary
still answers from beyond the strict-rp_filter router; the other ENI is
configured and answers; `status` says so too. For a thin primary entry (as
meta-data/all has it), a full one, the service stand-in, IPv6 and delegated
prefixes."""

from __future__ import annotations

import pytest

from tests.harness.agent import Agent
from tests.harness.daemon import configured_daemon
from tests.harness.enis import PRIMARY_MAC, Eni, make_eni, primary_eni
from tests.harness.kernel import address_ips, is_up, owned_rules, rule_sources, rules
from tests.harness.metadata import build_metadata
from tests.harness.metadata_service import serve_metadata
from tests.harness.prober import assert_traffic, inbound_handshake, outbound_handshake

ETH1_MAC = "00:16:3e:00:01:01"
PRIMARY_IP = "10.0.0.5"


def _listing_the_primarys_address(topo, *, thin: bool, **fields) -> dict:
    """eth1's ENI in a /16 that holds 10.0.0.5, with `fields` (default: 10.0.0.5
    as one of its private-ipv4s); the primary's entry thin or full."""
    doc = build_metadata(topo)
    macs = doc["network"]["interfaces"]["macs"]
    eth1 = macs[ETH1_MAC]
    eth1.update({"vswitch-cidr-block": "10.0.0.0/16", "netmask": "255.255.0.0"})
    eth1.update(fields or {"private-ipv4s": [*eth1["private-ipv4s"], PRIMARY_IP]})
    if thin:
        macs[PRIMARY_MAC] = {"mac": PRIMARY_MAC}
    return doc


def _assert_eth1_untouched_and_the_primary_answers(t, address: str = PRIMARY_IP) -> None:
    assert address_ips(t, "eth1") == [] and not is_up(t, "eth1")
    assert address not in {s.split("/")[0] for s in rule_sources(t)}
    assert not [r for r in owned_rules(t) if r.get("src", "").startswith("10.0.1.")]
    assert inbound_handshake(t, address), f"the primary no longer answers on {address}"
    assert outbound_handshake(t, address), f"the primary can no longer reach out from {address}"
    assert_traffic(t, t.eni("eth2").ips)


def _assert_one_line(res, *words: str) -> str:
    assert res.code == 4, str(res)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eni-agent: "), str(res)
    for word in (ETH1_MAC, "eth0", *words):
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize("thin", [True, False], ids=["thin-primary", "full-primary"])
def test_the_primarys_address_is_never_taken(topology_factory, tmp_path, thin):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write(_listing_the_primarys_address(t, thin=thin))

    res = agent.sync("--json")

    line = _assert_one_line(res, f"private-ipv4s: {PRIMARY_IP}") if thin else None
    if not thin:  # the full entry names the primary ENI (its MAC) as the holder
        assert res.code == 4 and len(res.stderr.splitlines()) == 1, str(res)
        line = res.stderr.splitlines()[0]
        assert ETH1_MAC in line and f"private-ipv4s: {PRIMARY_IP}" in line and PRIMARY_MAC in line
    assert res.states() == {"eth1": "invalid", "eth2": "configured"}
    assert res.eni("eth1")["errors"] == [line[len("eni-agent: "):]]
    _assert_eth1_untouched_and_the_primary_answers(t)

    status = agent.status()
    assert status.code == 4, str(status)
    assert "eth1: invalid" in status.stdout
    assert status.stdout.splitlines()[-1].startswith("status: NOT in sync"), str(status)
    again = agent.sync()
    assert again.code == 4 and "needs" not in again.stdout and "add " not in again.stdout


def test_a_prefix_holding_the_primarys_address_is_never_routed(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write(_listing_the_primarys_address(t, thin=True, **{"ipv4-prefixes": ["10.0.0.0/28"]}))

    res = agent.sync("--json")

    _assert_one_line(res, "ipv4-prefixes: 10.0.0.0/28 holds 10.0.0.5")
    assert not [r for r in rules(t) if r.get("src") == "10.0.0.0"]
    _assert_eth1_untouched_and_the_primary_answers(t)


def test_the_primarys_ipv6_address_is_never_taken(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)], ipv6=True, primary=primary_eni(ipv6=True))
    agent = Agent(t, tmp_path)
    ipv6 = {"vswitch-ipv6-cidr-block": "2001:db8::/64", "ipv6-gateway": "2001:db8::fffd",
            "ipv6s": ["2001:db8::5"]}
    agent.write(_listing_the_primarys_address(t, thin=True, **ipv6))

    res = agent.sync("--json")

    _assert_one_line(res, "ipv6s: 2001:db8::5")
    assert res.states() == {"eth1": "invalid", "eth2": "configured"}
    _assert_eth1_untouched_and_the_primary_answers(t, "2001:db8::5")
    assert inbound_handshake(t, PRIMARY_IP)


def test_from_the_service_the_primarys_address_is_never_taken(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path, _listing_the_primarys_address(t, thin=False)) as svc:
        res = agent.sync("--json", metadata=svc.url)
        assert res.states() == {"eth1": "invalid", "eth2": "configured"}, str(res)
        assert res.code == 4 and len(res.stderr.splitlines()) == 1, str(res)
        _assert_eth1_untouched_and_the_primary_answers(t)


# -- the agent's own copy: taken only where it stays --------------------------------------

ETH3 = Eni("00:16:3e:00:03:01", "eth3", "10.0.1.0/24", "10.0.1.253", ("10.0.1.30",),
           eni_id="eni-third-in-vsw-b", vswitch_id="vsw-b")
MOVED = "10.0.1.11"


def test_failover_an_address_moves_from_an_unlisted_eni_in_one_sync(topology_factory, tmp_path):
    """10.0.1.11 moves from eth1's ENI (no longer listed, its NIC still
    present) to eth3's, in the same vswitch: the agent's copy on eth1 goes in
    the same plan, so eth3's ENI is not invalid and answers on it."""
    t = topology_factory([make_eni(1), ETH3])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    assert MOVED in address_ips(t, "eth1")

    t.unassign_private_ip("eth1", MOVED)
    t.assign_private_ip("eth3", MOVED)
    res = agent.sync("--json", metadata=agent.write(build_metadata(t, [t.eni("eth3")])))

    assert res.code == 0, str(res)
    assert res.states() == {"eth3": "configured"}
    assert MOVED not in address_ips(t, "eth1") and MOVED in address_ips(t, "eth3")
    assert_traffic(t, ["10.0.1.30", MOVED])


def test_an_address_kept_on_an_invalid_eni_is_taken(topology_factory, tmp_path):
    """Where the old ENI is still listed but invalid (left as it is), its copy
    stays: eth3's ENI listing the address too is invalid, and the old copy
    keeps answering."""
    t = topology_factory([make_eni(1), ETH3])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()

    doc = build_metadata(t)
    macs = doc["network"]["interfaces"]["macs"]
    macs[ETH1_MAC]["gateway"] = "10.0.9.1"  # eth1 invalid: left as it is
    macs[ETH3.mac]["private-ipv4s"].append(MOVED)
    res = agent.sync("--json", metadata=agent.write(doc))

    assert res.code == 4, str(res)
    assert res.states() == {"eth1": "invalid", "eth3": "invalid"}
    assert f"private-ipv4s: {MOVED} is already an address of eth1" in res.eni("eth3")["errors"][0]
    assert MOVED in address_ips(t, "eth1") and MOVED not in address_ips(t, "eth3")
    assert_traffic(t, [MOVED])


def test_the_daemon_never_takes_the_primarys_address(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    metadata = Agent(t, tmp_path).write(_listing_the_primarys_address(t, thin=True))
    with configured_daemon(t, tmp_path, metadata, enis=[t.eni("eth2")],
                           configured_within=10) as d:
        d.wait_log(f"private-ipv4s: {PRIMARY_IP} is already an address of eth0", timeout=10)
        _assert_eth1_untouched_and_the_primary_answers(t)
        assert len(d.log_lines("is already an address of eth0")) == 1  # once, not per pass
