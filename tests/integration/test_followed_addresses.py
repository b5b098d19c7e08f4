"""Addresses others put on a managed ENI (issue 16 §1), behind the
strict-rp_filter router: keepalived's VIP (`ip addr add 10.0.1.100/32 dev
eth1`, as `virtual_ipaddress` does) answers from beyond the router only once
eni-agent gives it a `from` rule to the ENI's table; the address itself is
never touched, and the rule goes when the address goes."""

from __future__ import annotations

import json
import time

import pytest

from tests.harness.agent import Agent, write_config
from tests.harness.kernel import owned_rules, table_of
from tests.harness.daemon import eni_agent_cli, run_daemon
from tests.harness.commands import ip
from tests.harness.enis import make_eni
from tests.harness.kernel import ip_json
from tests.harness.prober import inbound_handshake


VIP = "10.0.1.100"


def vip_rules(t) -> list[dict]:
    return [r for r in owned_rules(t) if r.get("src") == VIP]


def vip_on_eth1(t) -> list[dict]:
    return [a for a in ip_json(t.guest, "addr", "show", "dev", "eth1")[0]["addr_info"]
            if a["local"] == VIP]


@pytest.fixture
def with_vip(topology_factory):
    t = topology_factory([make_eni(1)])
    t.route_havip("eth1", VIP)  # the VPC routes the HaVip to eth1
    return t


def test_sync_follows_a_vip_and_lets_go_when_it_goes(with_vip, tmp_path):
    t = with_vip
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    ip(t.guest, "addr", "add", f"{VIP}/32", "dev", "eth1")
    assert not inbound_handshake(t, VIP, timeout=1)  # replies leave by eth0: dropped

    res = agent.converge()
    assert f"add rule 10000: from {VIP} lookup {table_of(t, 'eth1')}" in \
        res.eni("eth1")["changes"]
    assert vip_rules(t) == [{"priority": 10000, "src": VIP, "table": str(table_of(t, "eth1")),
                             "protocol": "234"}]
    assert inbound_handshake(t, VIP)
    (address,) = vip_on_eth1(t)
    assert address.get("protocol") is None  # still the operator's: never marked or replaced
    status = agent.status("--json")
    assert status.code == 0 and status.eni("eth1")["followed"] == [f"{VIP}/32"], str(status)
    assert agent.status().stdout.count(f"followed: {VIP}/32") == 1

    ip(t.guest, "addr", "del", f"{VIP}/32", "dev", "eth1")
    agent.converge()
    assert vip_rules(t) == []

    ip(t.guest, "addr", "add", f"{VIP}/32", "dev", "eth1")
    agent.converge()
    res = agent.cleanup("--json")
    assert res.code == 0 and vip_rules(t) == [] and owned_rules(t) == []
    assert vip_on_eth1(t), "cleanup must leave the operator's address"


def test_outside_the_vswitch_untouched_unrouted_and_warned(with_vip, tmp_path):
    t = with_vip
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    ip(t.guest, "addr", "add", "192.168.50.5/32", "dev", "eth1")
    agent.converge()
    assert [r for r in owned_rules(t) if r.get("src") == "192.168.50.5"] == []
    status = agent.status("--json")
    assert status.code == 0, str(status)
    assert any("192.168.50.5/32" in w and "outside the vswitch 10.0.1.0/24" in w
               for w in status.eni("eth1")["warnings"]), str(status)


def test_follow_addresses_false(with_vip, tmp_path):
    t = with_vip
    agent = Agent(t, tmp_path)
    agent.write()
    off = write_config(tmp_path / "off.toml", "follow_addresses = false\n")
    ip(t.guest, "addr", "add", f"{VIP}/32", "dev", "eth1")
    agent.converge("--config", off)
    assert vip_rules(t) == [] and not inbound_handshake(t, VIP, timeout=1)


def test_the_daemon_follows_the_address_notification(with_vip, tmp_path):
    t = with_vip
    agent = Agent(t, tmp_path)
    agent.write()
    with run_daemon(t, agent.metadata, tmp_path) as d:
        d.wait_ready()
        d.wait_until(lambda: table_of(t, "eth1") and len(owned_rules(t)) == 2)
        start = time.monotonic()
        ip(t.guest, "addr", "add", f"{VIP}/32", "dev", "eth1")
        d.wait_until(lambda: vip_rules(t), timeout=2)
        assert time.monotonic() - start < 1.0
        assert inbound_handshake(t, VIP)
        # `status` while the daemon runs shows its view: the VIP followed there too
        view = json.loads(eni_agent_cli(t, d, "status", "--json").stdout)
        (eth1,) = [e for e in view["enis"] if e["link"] == "eth1"]
        assert eth1["followed_addresses"] == [f"{VIP}/32"], view
        assert f"followed: {VIP}/32" in eni_agent_cli(t, d, "status").stdout
        ip(t.guest, "addr", "del", f"{VIP}/32", "dev", "eth1")
        d.wait_until(lambda: not vip_rules(t), timeout=2)
        assert len(owned_rules(t)) == 2


def test_ipv6_an_address_in_the_ipv6_vswitch_is_followed_and_the_vswitch_routed(
        topology_factory, tmp_path):
    from tests.harness.commands import run_in
    from tests.harness.enis import primary_eni
    vip6 = "2001:db8:1::100"
    t = topology_factory([make_eni(1, n_ipv6=1)], ipv6=True, primary=primary_eni(ipv6=True))
    t.route_havip("eth1", vip6)
    agent = Agent(t, tmp_path)
    agent.write()
    defaults = write_config(tmp_path / "defaults.toml", "")  # subnet_routes on
    agent.converge("--config", defaults)
    ip(t.guest, "-6", "addr", "add", f"{vip6}/128", "dev", "eth1", "nodad")
    assert not inbound_handshake(t, vip6, timeout=1)  # replies by eth0: the router drops them
    res = agent.converge("--config", defaults)
    assert res.eni("eth1")["followed"] == [f"{vip6}/128"], str(res)
    assert inbound_handshake(t, vip6)
    route = run_in(t.guest, "ip", "-6", "route", "get", "2001:db8:1::20").stdout
    assert "dev eth1" in route and "src 2001:db8:1::10" in route, route
    ip(t.guest, "-6", "addr", "del", f"{vip6}/128", "dev", "eth1")
    agent.converge("--config", defaults)
    assert [r for r in ip_json(t.guest, "-6", "rule") if r.get("src") == vip6] == []
