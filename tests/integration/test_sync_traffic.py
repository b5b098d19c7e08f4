"""`eni-agent sync` makes every ENI address work both ways, with exactly the
documented routing scheme (docs/routing.md) and nothing else."""

from __future__ import annotations

import pytest

from tests.harness.agent import Agent
from tests.harness.commands import get_sysctl
from tests.harness.enis import Eni, make_eni
from tests.harness.expect import DEFAULT_RULES, expected_rules, expected_table, sorted_rules
from tests.harness.kernel import (address_protocols, addresses, ip_json, is_up, main_routes,
                                  owned_routes, protocol_names, rules, table_of, table_routes)
from tests.harness.prober import assert_traffic, eni_ips


@pytest.mark.parametrize("guest_rp_filter", [0, 1], ids=["guest-rp-filter-off",
                                                         "guest-rp-filter-strict"])
def test_every_eni_address_and_the_primary_handshake_both_ways_after_sync(
        topology_factory, tmp_path, guest_rp_filter):
    t = topology_factory([make_eni(1), make_eni(2)], guest_rp_filter=guest_rp_filter)
    agent = Agent(t, tmp_path)
    agent.write()

    res = agent.converge()

    assert res.states() == {"eth1": "configured", "eth2": "configured"}
    assert_traffic(t, ["10.0.0.5", *eni_ips(t)])


def test_sync_installs_exactly_the_documented_routing_scheme(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    main_before = main_routes(t)
    eth0_before = addresses(t, "eth0")

    res = agent.converge()

    tables = {name: table_of(t, name) for name in ("eth1", "eth2")}
    assert {e["link"]: e["table"] for e in res.json["enis"]} == tables

    # rules: local, one `from <ip> lookup <10000+ifindex>` per ENI address at
    # priority 10000 with protocol 234, main, default; nothing else
    expected = sorted_rules(expected_rules(t.eni("eth1").ips, tables["eth1"])
                            + expected_rules(t.eni("eth2").ips, tables["eth2"]))
    numeric = ip_json(t.guest, "-N", "rule")
    assert sorted_rules([r for r in numeric if r["priority"] == 10000]) == expected
    assert [r for r in rules(t) if r["priority"] != 10000] == DEFAULT_RULES
    # iproute2 6.1 prints "protocol": "234" (or the name an rt_protos file gives it)
    printed = {r.get("protocol") for r in ip_json(t.guest, "rule") if r["priority"] == 10000}
    assert len(printed) == 1 and printed <= protocol_names(), printed

    # each table: the subnet (scope link) and `default via <gw> onlink`, all proto 234
    for name, table in tables.items():
        assert table_routes(t, table) == expected_table(t.eni(name)), name
    assert len(owned_routes(t)) == 4  # and no owned route anywhere else

    # addresses: <ip>/<vswitch prefix>, noprefixroute, marked with IFA_PROTO 234
    protos = address_protocols(t)
    for name in ("eth1", "eth2"):
        eni = t.eni(name)
        assert [(a["local"], a["prefixlen"], a.get("noprefixroute")) for a in addresses(t, name)] \
            == [(ip, 24, True) for ip in eni.ips]
        assert all(protos[f"{name} {ip}/24"] == 234 for ip in eni.ips), protos
        assert is_up(t, name)
        assert get_sysctl(t.guest, f"net.ipv4.conf.{name}.promote_secondaries") == "1"
    assert protos["eth0 10.0.0.5/24"] == 0

    # the main table gains no route for the ENI subnets; the primary is untouched
    assert main_routes(t) == main_before
    assert addresses(t, "eth0") == eth0_before
    assert get_sysctl(t.guest, "net.ipv4.conf.eth0.promote_secondaries") == "0"
    # MTU is the platform's
    assert {l["ifname"]: l["mtu"] for l in ip_json(t.guest, "link")
            if l["ifname"].startswith("eth")} == {"eth0": 1500, "eth1": 1500, "eth2": 1500}


def test_eni_in_the_primary_vswitch_works_and_leaves_the_main_table_alone(
        topology_factory, tmp_path):
    same = Eni("00:16:3e:00:05:01", "eth5", "10.0.0.0/24", "10.0.0.253",
               ("10.0.0.20", "10.0.0.21"), eni_id="eni-samevsw")
    t = topology_factory([same])
    agent = Agent(t, tmp_path)
    agent.write()
    main_before = main_routes(t)

    agent.converge()

    assert main_routes(t) == main_before  # no second 10.0.0.0/24 route in main
    assert table_routes(t, table_of(t, "eth5")) == expected_table(t.eni("eth5"))
    assert_traffic(t, ["10.0.0.5", "10.0.0.20", "10.0.0.21"])


def test_two_enis_sharing_one_vswitch_each_carry_their_own_addresses(topology_factory, tmp_path):
    sibling = Eni("00:16:3e:00:02:01", "eth2", "10.0.1.0/24", "10.0.1.253",
                  ("10.0.1.20", "10.0.1.21"), eni_id="eni-sibling")
    t = topology_factory([make_eni(1), sibling])
    agent = Agent(t, tmp_path)
    agent.write()
    main_before = main_routes(t)

    agent.converge()

    assert main_routes(t) == main_before
    for name in ("eth1", "eth2"):
        assert table_routes(t, table_of(t, name)) == expected_table(t.eni(name)), name
    # the router accepts each reply only from the ENI its address belongs to
    assert_traffic(t, ["10.0.0.5", *eni_ips(t)])
