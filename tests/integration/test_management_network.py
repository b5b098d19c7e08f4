"""Management networks (issue 16 §3) behind the strict-rp_filter router,
with the management side guarded as its security group would be: an nft
rule at the router admits only traffic arriving from the management vswitch
(eth1's link, 10.0.1.0/24).

* a management host in the vswitch (the router's own 10.0.1.253 here) is
  reached through eth1 by the vswitch route in `main` (subnet_routes);
* a management host beyond it (10.9.0.2, in a management CIDR routed by
  the router) through the config's [[routes]];
* both without a route added by hand, gone with the ENI and back with it,
  and removed by cleanup; a foreign route in main is never replaced."""

from __future__ import annotations


import pytest

from tests.harness.agent import Agent, assert_one_error_line, write_config
from tests.harness.kernel import owned_routes
from tests.harness.commands import ip, run_in
from tests.harness.enis import make_eni
from tests.harness.namespaces import create_namespace, delete_namespace
from tests.harness.prober import tcp_handshake


MGMT_NET, MGMT_HOST, MGMT_GW = "10.9.0.0/24", "10.9.0.2", "10.9.0.1"
IN_VSWITCH = "10.0.1.253"  # a management host in the ENI's vswitch: the router's address
ROUTES = f'[[routes]]\neni = "eni-second"\nto = ["{MGMT_NET}"]\n'


@pytest.fixture
def managed(topology_factory):
    """(topology, management namespace): eth1 is the management ENI."""
    t = topology_factory([make_eni(1)])
    mgmt = create_namespace("mgmt", t.tag)
    try:
        ip(t.router, "link", "add", "rm", "type", "veth", "peer", "name", "eth0", "netns", mgmt)
        ip(t.router, "addr", "add", f"{MGMT_GW}/24", "dev", "rm")
        ip(t.router, "link", "set", "rm", "up")
        ip(mgmt, "addr", "add", f"{MGMT_HOST}/24", "dev", "eth0")
        ip(mgmt, "link", "set", "eth0", "up")
        ip(mgmt, "link", "set", "lo", "up")
        ip(mgmt, "route", "add", "default", "via", MGMT_GW)
        guard_management(t)
        yield t, mgmt
    finally:
        delete_namespace(mgmt)


def guard_management(t) -> None:
    """The management side's security group: only what arrives from the
    management vswitch (eth1's link at the router) gets in."""
    rv = t.eni("eth1").router_ifname
    rules = f"""
flush ruleset
table inet sg {{
  chain forward {{ type filter hook forward priority 0; policy accept;
    oifname "rm" iifname != "{rv}" drop
  }}
  chain input {{ type filter hook input priority 0; policy accept;
    ip daddr {IN_VSWITCH} tcp flags syn iifname != "{rv}" drop
  }}
}}
"""
    run_in(t.router, "nft", "-f", "-", input=rules, check=True)


def reaches(t, mgmt, server_ip: str) -> bool:
    server_ns = t.router if server_ip == IN_VSWITCH else mgmt
    return tcp_handshake(server_ns, server_ip, t.guest, timeout=1.0)


def main_owned(t) -> list[str]:
    return sorted(f"{r['dst']} {r.get('gateway', '-')} {r['dev']} {r.get('prefsrc')}"
                  for r in owned_routes(t) if r.get("table", "main") == "main")


def test_management_hosts_are_reached_through_the_eni_only_with_its_routes(managed, tmp_path):
    t, mgmt = managed
    agent = Agent(t, tmp_path)
    agent.write()
    off = write_config(tmp_path / "off.toml", "subnet_routes = false\n")
    on = write_config(tmp_path / "on.toml", ROUTES)

    agent.converge("--config", off)
    assert main_owned(t) == []
    assert not reaches(t, mgmt, IN_VSWITCH) and not reaches(t, mgmt, MGMT_HOST)

    res = agent.converge("--config", on)
    assert main_owned(t) == ["10.0.1.0/24 - eth1 10.0.1.10", "10.9.0.0/24 10.0.1.253 eth1 10.0.1.10"]
    assert "add route 10.9.0.0/24 via 10.0.1.253 dev eth1 src 10.0.1.10 table main" in \
        res.eni("eth1")["changes"]
    assert reaches(t, mgmt, IN_VSWITCH) and reaches(t, mgmt, MGMT_HOST)
    # business traffic still leaves by the primary
    route = run_in(t.guest, "ip", "route", "get", "192.168.100.2").stdout
    assert "dev eth0" in route and "src 10.0.0.5" in route
    assert agent.status("--config", on).code == 0

    # detach: gone with the ENI; attach again: back at the next sync
    eni = t.remove_eni("eth1")
    agent.converge("--config", on)
    assert main_owned(t) == [] and not reaches(t, mgmt, MGMT_HOST)
    status = agent.status("--json", "--config", on)
    assert any("eni-second is not attached" in w for w in status.json["warnings"]), str(status)
    t.add_eni(eni)
    guard_management(t)  # the router's end of the new link has a new name
    agent.converge("--config", on)
    assert len(main_owned(t)) == 2 and reaches(t, mgmt, MGMT_HOST)

    res = agent.cleanup("--json", "--config", on)
    assert res.code == 0 and main_owned(t) == [] and owned_routes(t) == []


def test_an_eni_in_the_primarys_vswitch_adds_nothing_to_main(topology_factory, tmp_path):
    from tests.harness.enis import Eni
    t = topology_factory([Eni("00:16:3e:00:01:01", "eth1", "10.0.0.0/24", "10.0.0.253",
                              ("10.0.0.20",), "eni-second", "vsw-a")])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    assert main_owned(t) == []


def test_a_foreign_route_in_main_is_never_replaced(managed, tmp_path):
    t, _ = managed
    ip(t.guest, "route", "add", MGMT_NET, "via", "10.0.0.253", "dev", "eth0")
    agent = Agent(t, tmp_path)
    agent.write()
    on = write_config(tmp_path / "on.toml", ROUTES)
    res = agent.converge("--config", on)
    assert main_owned(t) == ["10.0.1.0/24 - eth1 10.0.1.10"]
    assert any(f"main already has a route to {MGMT_NET}" in w for w in res.json["warnings"])
    theirs = run_in(t.guest, "ip", "route", "show", MGMT_NET).stdout
    assert "via 10.0.0.253 dev eth0" in theirs


@pytest.mark.parametrize("to, reason", [
    ('["10.9.0.1/24"]', "not a CIDR"),
    ('["0.0.0.0/0"]', "default route"),
    (f'["{MGMT_NET}", "{MGMT_NET}"]', "claimed twice"),
], ids=["invalid CIDR", "default route", "twice"])
def test_bad_routes_are_refused_before_anything_changes(topology_factory, tmp_path, to, reason):
    t = topology_factory([make_eni(1)])
    agent = Agent(t, tmp_path)
    agent.write()
    bad = write_config(tmp_path / "bad.toml", f'[[routes]]\neni = "eni-second"\nto = {to}\n')
    res = agent.sync("--config", bad)
    assert reason in assert_one_error_line(res, 4)
    assert owned_routes(t) == []
