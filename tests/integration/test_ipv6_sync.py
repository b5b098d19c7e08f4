"""IPv6 ENIs: `eni-agent sync` with a document giving ENIs `ipv6s`,
`ipv6-gateway` and `vswitch-ipv6-cidr-block`.

Topologies here have IPv6 on (Topology(ipv6=True)): the primary NIC has
2001:db8::5 and a default via the router, as SLAAC would give it; each IPv6
ENI's addresses are routed to it by the router, which forwards a packet from an
ENI IPv6 address only if it arrived on that ENI's link (the harness's strict
reverse-path rules: the kernel has no IPv6 rp_filter). So a TCP handshake from
or to an ENI IPv6 address only completes if the reply leaves through the ENI.

The guest runs duplicate address detection (accept_dad=1, the kernel's
default), so an address without `nodad` would stay tentative (unusable) for a
second after it is added.
"""

from __future__ import annotations

import json

import pytest

from tests.harness.agent import Agent
from tests.harness.commands import ip
from tests.harness.enis import make_eni
from tests.harness.expect import expected_rules6, ipv6_problems
from tests.harness.kernel import (dumps, global6, guest_state, link_local6, owned_rules6, routes6,
                                  rules6, settle_ipv6, table_of)
from tests.harness.metadata import build_metadata
from tests.harness.prober import assert_traffic, assert_traffic6, inbound_handshake
from tests.harness.topology import Topology, ipv6_topology


@pytest.fixture
def v6(topology_factory):
    """eth1: 2 IPv4 + 2 IPv6; eth2: 2 IPv4 + 1 IPv6; eth3: IPv4 only."""
    return ipv6_topology(topology_factory, [make_eni(1, n_ipv6=2), make_eni(2, n_ipv6=1),
                                            make_eni(3)])


def test_sync_configures_ipv6_enis_with_traffic_both_ways(v6, tmp_path):
    t = v6
    agent = Agent(t, tmp_path)
    agent.write()
    doc = json.loads(agent.metadata.read_text())
    assert doc["network"]["interfaces"]["macs"]["00:16:3e:00:01:01"]["ipv6s"] == [
        "2001:db8:1::10", "2001:db8:1::11"]
    # Before: nothing answers on the ENI IPv6 addresses.
    assert not inbound_handshake(t, "2001:db8:1::10", timeout=0.5)
    main_before = routes6(t, "main")

    res = agent.converge()
    assert res.states() == {"eth1": "configured", "eth2": "configured", "eth3": "configured"}
    assert sorted(res.eni("eth1")["addresses"]) == sorted(
        ["10.0.1.10/24", "10.0.1.11/24", "2001:db8:1::10/64", "2001:db8:1::11/64"])
    # At once (no waiting for DAD): present, nodad, noprefixroute, not tentative.
    for name in ("eth1", "eth2"):
        assert ipv6_problems(t, name) == [], ipv6_problems(t, name)
    assert global6(t, "eth3") == {}
    assert routes6(t, table_of(t, "eth3")) == []  # no IPv6 in an IPv4-only ENI's table
    assert owned_rules6(t) == expected_rules6(t, "eth1", "eth2")
    # The main table is the image's: no ENI subnet there.
    settle_ipv6(t)
    main_after = routes6(t, "main")
    new = sorted((r for r in main_after if r not in main_before), key=lambda r: r["dev"])
    assert new == [{"dst": "fe80::/64", "dev": name, "protocol": "2", "flags": []}
                   for name in ("eth1", "eth2", "eth3")], new  # the kernel's, links up

    ipv6 = ["2001:db8:1::10", "2001:db8:1::11", "2001:db8:2::10"]
    assert_traffic6(t, ipv6)
    assert_traffic6(t, ["2001:db8::5"])  # the primary is unaffected
    assert_traffic(t, ["10.0.0.5", "10.0.1.10", "10.0.2.11", "10.0.3.10"])

    # A second sync changes nothing; status agrees.
    settle_ipv6(t)
    state = dumps(guest_state(t))
    again = agent.converge()
    assert again.states() == {"eth1": "in-sync", "eth2": "in-sync", "eth3": "in-sync"}
    assert dumps(guest_state(t)) == state
    assert agent.status().code == 0


def test_an_ipv6_address_dropped_from_the_document_is_removed_with_its_rule(v6, tmp_path):
    t = v6
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    t.unassign_private_ip("eth1", "2001:db8:1::11")  # the cloud unassigns it
    agent.write()
    res = agent.converge()
    assert sorted(res.eni("eth1")["changes"]) == sorted([
        "remove address 2001:db8:1::11/64 dev eth1",
        f"remove rule 10000: from 2001:db8:1::11 lookup {table_of(t, 'eth1')}"])
    assert res.eni("eth2")["changes"] == []
    assert set(global6(t, "eth1")) == {"2001:db8:1::10"}
    assert ipv6_problems(t, "eth1") == [] and ipv6_problems(t, "eth2") == []
    assert "2001:db8:1::11" not in {r["src"] for r in rules6(t)}
    assert_traffic6(t, ["2001:db8:1::10", "2001:db8:2::10"])

    # All IPv6 gone from eth2's entry (an IPv4-only ENI now): its addresses,
    # rules and IPv6 routes go; its IPv4 stays.
    doc = build_metadata(t)
    for key in ("ipv6s", "ipv6-gateway", "vswitch-ipv6-cidr-block"):
        del doc["network"]["interfaces"]["macs"]["00:16:3e:00:02:01"][key]
    agent.write(doc)
    res = agent.converge()
    table2 = table_of(t, "eth2")
    assert sorted(res.eni("eth2")["changes"]) == sorted([
        "remove address 2001:db8:2::10/64 dev eth2",
        "remove route 2001:db8:2::/64 dev eth2 table %d" % table2,
        "remove route fe80::/64 dev eth2 table %d" % table2,
        "remove route default via 2001:db8:2::fffd dev eth2 table %d" % table2,
        "remove rule 10000: from 2001:db8:2::10 lookup %d" % table2]), res.eni("eth2")
    assert global6(t, "eth2") == {} and routes6(t, table2) == []
    assert link_local6(t, "eth2")  # the kernel's link-local address stays
    assert_traffic(t, ["10.0.2.10", "10.0.2.11"])
    assert ipv6_problems(t, "eth1") == []


def test_cleanup_removes_the_agents_ipv6_state_and_nothing_else(v6, tmp_path):
    t = v6
    agent = Agent(t, tmp_path)
    # The links up with the kernel's link-local addresses, and a user's own
    # IPv6 address and route on eth1: all of it must survive sync + cleanup.
    for name in ("eth1", "eth2", "eth3"):
        ip(t.guest, "link", "set", name, "up")
    # (outside the ENI's vswitch: not followed, warned about)
    ip(t.guest, "-6", "addr", "add", "2001:db8:99::99/64", "dev", "eth1", "nodad",
       "noprefixroute")
    ip(t.guest, "-6", "route", "add", "2001:db8:77::/64", "dev", "eth1")
    settle_ipv6(t)
    before = dumps(guest_state(t))

    agent.write()
    agent.converge()
    status = agent.status("--json")
    assert status.code == 0, str(status)
    assert any("2001:db8:99::99/64" in w for w in status.eni("eth1")["warnings"]), str(status)
    assert set(global6(t, "eth1")) == {"2001:db8:1::10", "2001:db8:1::11", "2001:db8:99::99"}
    assert owned_rules6(t) == expected_rules6(t, "eth1", "eth2")
    assert_traffic6(t, ["2001:db8:1::10", "2001:db8:2::10"])

    res = agent.cleanup("--json")
    assert res.code == 0, str(res)
    settle_ipv6(t)
    assert dumps(guest_state(t)) == before
    assert owned_rules6(t) == []
    assert set(global6(t, "eth1")) == {"2001:db8:99::99"}
    for name in ("eth1", "eth2", "eth3"):
        assert link_local6(t, name), name
        assert {"dst": "fe80::/64", "dev": name, "protocol": "2", "flags": []} in routes6(t, "main")


# Which IPv6 fields the ENI entry keeps: anything but all three (or just the
# CIDR and the gateway: an IPv6 vswitch, no IPv6 assigned) is refused.
PARTIAL = [
    pytest.param(("ipv6s",), "vswitch-ipv6-cidr-block", id="ipv6s-only"),
    pytest.param(("ipv6s", "vswitch-ipv6-cidr-block"), "ipv6-gateway", id="no-gateway"),
    pytest.param(("ipv6s", "ipv6-gateway"), "vswitch-ipv6-cidr-block", id="no-cidr"),
    pytest.param(("ipv6-gateway",), "vswitch-ipv6-cidr-block", id="gateway-only"),
    pytest.param(("vswitch-ipv6-cidr-block",), "ipv6-gateway", id="cidr-only"),
]


def test_an_eni_with_only_some_ipv6_fields_exits_4_and_changes_nothing(v6, tmp_path):
    t = v6
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    settle_ipv6(t)
    converged = dumps(guest_state(t))
    for param in PARTIAL:
        keep, named = param.values
        doc = build_metadata(t)
        fields = doc["network"]["interfaces"]["macs"]["00:16:3e:00:02:01"]
        for key in ("ipv6s", "ipv6-gateway", "vswitch-ipv6-cidr-block"):
            if key not in keep:
                del fields[key]
        agent.write(doc)
        res = agent.sync()  # that ENI is set aside (issue 12 §4): reported, one line
        (line,) = res.stderr.splitlines()
        assert res.code == 4 and "00:16:3e:00:02:01 eth2: invalid" in res.stdout, str(res)
        assert "00:16:3e:00:02:01" in line and named in line, (param.id, line)
        assert dumps(guest_state(t)) == converged, param.id
    # An unconfigured guest is not touched either.
    fresh = ipv6_topology(lambda enis, **kw: Topology.create(enis, **kw), [make_eni(1, n_ipv6=1)])
    try:
        before = dumps(guest_state(fresh))
        doc = build_metadata(fresh)
        del doc["network"]["interfaces"]["macs"]["00:16:3e:00:01:01"]["ipv6-gateway"]
        (tmp_path / "fresh").mkdir()
        fresh_agent = Agent(fresh, tmp_path / "fresh")
        fresh_agent.write(doc)
        res = fresh_agent.sync()
        assert res.code == 4 and len(res.stderr.splitlines()) == 1, str(res)
        assert dumps(guest_state(fresh)) == before
    finally:
        fresh.destroy()


def test_ipv6_vswitch_without_ipv6_addresses_is_an_ipv4_only_eni(v6, tmp_path):
    t = v6
    agent = Agent(t, tmp_path)
    doc = build_metadata(t)
    del doc["network"]["interfaces"]["macs"]["00:16:3e:00:02:01"]["ipv6s"]
    agent.write(doc)
    res = agent.converge()
    assert res.eni("eth2")["addresses"] == ["10.0.2.10/24", "10.0.2.11/24"]
    assert global6(t, "eth2") == {} and routes6(t, table_of(t, "eth2")) == []
    assert ipv6_problems(t, "eth1") == []


def test_a_link_local_ipv6_gateway(topology_factory, tmp_path):
    """The gateway may be link-local (fe80::...): the default route goes via it
    on the ENI's link, and neighbour discovery with it from the ENI's
    addresses stays on that link (the table's fe80::/64 route)."""
    eni = make_eni(1, n_ipv6=1)
    eni.ipv6_gateway = "fe80::fffd"
    t = ipv6_topology(topology_factory, [eni])
    agent = Agent(t, tmp_path)
    agent.write()
    res = agent.converge()
    assert res.eni("eth1")["state"] == "configured"
    assert ipv6_problems(t, "eth1") == []
    assert_traffic6(t, ["2001:db8:1::10"])


def test_ipv6_addresses_in_any_spelling_converge_once(topology_factory, tmp_path):
    """Upper case, leading zeros, expanded forms: the same addresses as the
    kernel's canonical ones, so a second sync is a no-op."""
    t = ipv6_topology(topology_factory, [make_eni(1, n_ipv6=2)])
    agent = Agent(t, tmp_path)
    doc = build_metadata(t)
    fields = doc["network"]["interfaces"]["macs"]["00:16:3e:00:01:01"]
    fields["ipv6s"] = ["2001:0DB8:0001:0000:0000:0000:0000:0010", "2001:db8:1:0::11"]
    fields["ipv6-gateway"] = "2001:DB8:1::FFFD"
    fields["vswitch-ipv6-cidr-block"] = "2001:0db8:0001::/64"
    agent.write(doc)
    agent.converge()
    assert ipv6_problems(t, "eth1") == []
    settle_ipv6(t)
    state = dumps(guest_state(t))
    res = agent.converge()
    assert res.states() == {"eth1": "in-sync"}
    assert dumps(guest_state(t)) == state
    assert_traffic6(t, ["2001:db8:1::10", "2001:db8:1::11"])
