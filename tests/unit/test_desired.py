"""desired_state: which link each ENI lands on, and the table/rule/route scheme."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from eni_agent.desired import (DEFAULT_ROUTE, DEFAULT_ROUTE6, LINK_LOCAL6, Desired, Match,
                               desired_state)
from eni_agent.plan import Action, Change, plan
from eni_agent.state import Address, AltName, Link, Observed, Route, Rule

from tests.harness.documents import (SECOND_MAC, THIRD_MAC, eni_fields, example_metadata, make_doc,
                                     parse)
from tests.harness.enis import PRIMARY_MAC
from tests.harness.observed import (CONFIG, ETH0, ETH1, ETH2, GW1, IP10, IP11, NET1, TABLE1,
                                    config_with, converged_observed, eth1_state)


def only(desired: Desired):
    (d,) = desired.enis
    return d


def test_matched_eni_gets_table_rules_and_routes():
    observed = Observed(links=(ETH0, ETH1))
    desired = desired_state(example_metadata(), observed, CONFIG)

    d = only(desired)
    table = 10000 + 3
    assert (d.match, d.link, d.table, d.reason) == (Match.MATCHED, ETH1, table, "")
    assert d.addresses == {Address(3, IP10, 24), Address(3, IP11, 24)}
    assert d.routes == {Route(table, NET1, 3), Route(table, DEFAULT_ROUTE, 3, GW1)}
    assert d.rules == {Rule(10000, IP10, table), Rule(10000, IP11, table)}
    assert (desired.addresses, desired.routes, desired.rules) == (d.addresses, d.routes, d.rules)
    assert desired.up_links == {ETH1}


@pytest.mark.parametrize(
    "table_base, rule_priority, ifindex",
    [(10000, 10000, 3), (256, 1, 2), (20000, 32765, 7), (2**31, 500, 1000)],
)
def test_table_is_table_base_plus_ifindex(table_base, rule_priority, ifindex):
    config = config_with(table_base=table_base, rule_priority=rule_priority)
    link = Link(ifindex, "ens5", SECOND_MAC, True)
    d = only(desired_state(example_metadata(), Observed(links=(ETH0, link)), config))

    table = table_base + ifindex
    assert d.table == table
    assert {r.table for r in d.routes} == {r.table for r in d.rules} == {table}
    assert {r.priority for r in d.rules} == {rule_priority}
    assert {r.oif for r in d.routes} == {a.index for a in d.addresses} == {ifindex}


def test_one_rule_per_ip_and_two_routes_per_table():
    doc = make_doc({
        SECOND_MAC: eni_fields(["10.0.1.10", "10.0.1.11", "10.0.1.12"], "10.0.1.0/24",
                               "10.0.1.253"),
        THIRD_MAC: eni_fields("10.0.2.10", "10.0.2.0/25", "10.0.2.1"),
    })
    desired = desired_state(parse(doc), Observed(links=(ETH0, ETH1, ETH2)), CONFIG)

    assert [d.match for d in desired.enis] == [Match.MATCHED, Match.MATCHED]
    assert sorted((r.src, r.table) for r in desired.rules) == [
        (IPv4Network("10.0.1.10/32"), 10003), (IPv4Network("10.0.1.11/32"), 10003),
        (IPv4Network("10.0.1.12/32"), 10003), (IPv4Network("10.0.2.10/32"), 10004)]
    assert desired.routes == {
        Route(10003, DEFAULT_ROUTE, 3, GW1), Route(10003, NET1, 3),
        Route(10004, DEFAULT_ROUTE, 4, IPv4Address("10.0.2.1")),
        Route(10004, IPv4Network("10.0.2.0/25"), 4)}
    assert Address(4, IPv4Address("10.0.2.10"), 25) in desired.addresses
    for route in desired.routes:  # subnet on-link, default via the gateway
        assert (route.gateway is None) == (route.dst != DEFAULT_ROUTE)


def test_primary_nic_is_never_matched():
    desired = desired_state(example_metadata(), Observed(links=(ETH0, ETH1)), CONFIG)
    assert [d.eni.mac for d in desired.enis] == [SECOND_MAC]
    assert ETH0.index not in {a.index for a in desired.addresses}
    assert ETH0 not in desired.up_links


def test_primary_nic_never_matched_even_if_upper_case_in_the_document():
    doc = make_doc({SECOND_MAC: eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253")},
                   primary_mac=PRIMARY_MAC.upper())
    desired = desired_state(parse(doc), Observed(links=(ETH0, ETH1)), CONFIG)
    assert [d.eni.mac for d in desired.enis] == [SECOND_MAC]


def test_no_metadata_means_own_nothing():
    assert desired_state(None, Observed(links=(ETH0, ETH1)), CONFIG) == Desired()


MATCH_CASES = [
    # id, links, config, foreign/named tables and what is owned, expected match
    ("no link with the MAC", (ETH0,), CONFIG, {}, Match.PENDING),
    ("link of another MAC only", (ETH0, ETH2), CONFIG, {}, Match.PENDING),
    ("ignored by MAC", (ETH0, ETH1), config_with(ignore_macs=(SECOND_MAC,)), {}, Match.IGNORED),
    ("ignored by upper-case MAC", (ETH0, ETH1), config_with(ignore_macs=(SECOND_MAC.upper(),)), {},
     Match.IGNORED),
    ("ignored while pending", (ETH0,), config_with(ignore_macs=(SECOND_MAC,)), {}, Match.IGNORED),
    ("ignored by exact name", (ETH0, ETH1), config_with(ignore_interfaces=("eth1",)), {},
     Match.IGNORED),
    ("ignored by glob", (ETH0, ETH1), config_with(ignore_interfaces=("cali*", "eth[0-9]")), {},
     Match.IGNORED),
    ("glob not matching", (ETH0, ETH1), config_with(ignore_interfaces=("eth1?", "ETH1")), {},
     Match.MATCHED),
    ("two unenslaved links share the MAC", (ETH0, ETH1, Link(9, "eth9", SECOND_MAC, True)),
     CONFIG, {}, Match.AMBIGUOUS),
    ("extra link with the MAC has a master",
     (ETH0, ETH1, Link(9, "enp0", SECOND_MAC, True, master=3)), CONFIG, {}, Match.MATCHED),
    ("table used by someone else", (ETH0, ETH1), CONFIG, {"foreign_tables": {10003}},
     Match.CONFLICT),
    ("table named in rt_tables", (ETH0, ETH1), CONFIG, {"named_tables": {10003}},
     Match.CONFLICT),
    ("table named in rt_tables even though owned", (ETH0, ETH1), CONFIG,
     {"named_tables": {10003}, "owned": True}, Match.CONFLICT),
    ("foreign use of the agent's own table", (ETH0, ETH1), CONFIG,
     {"foreign_tables": {10003}, "owned": True}, Match.MATCHED),
    ("other tables in use", (ETH0, ETH1), CONFIG,
     {"foreign_tables": {254, 255, 10002, 10004}, "named_tables": {100}}, Match.MATCHED),
]


@pytest.mark.parametrize("links, config, tables, expected", [c[1:] for c in MATCH_CASES],
                         ids=[c[0] for c in MATCH_CASES])
def test_match(links, config, tables, expected):
    tables = dict(tables)
    if tables.pop("owned", False):
        addresses, routes, rules = eth1_state()
    else:
        addresses, routes, rules = frozenset(), frozenset(), frozenset()
    observed = Observed(links=links, addresses=addresses, routes=routes, rules=rules,
                        foreign_tables=frozenset(tables.get("foreign_tables", ())),
                        named_tables=frozenset(tables.get("named_tables", ())))

    desired = desired_state(example_metadata(), observed, config)

    d = only(desired)
    assert d.match is expected, d.reason
    if expected is Match.MATCHED:
        assert desired.rules and desired.routes and desired.addresses
        return
    assert d.reason
    # Anything not matched contributes nothing to the desired state ...
    assert not (d.addresses or d.routes or d.rules)
    # ... but an ENI that needs an operator keeps what the agent gave it earlier.
    kept = observed.addresses | observed.routes | observed.rules
    needs_operator = expected in (Match.AMBIGUOUS, Match.CONFLICT)
    # An ignored ENI's id is let go of as its altname; one needing an operator keeps it.
    releasable = {AltName(link.index, "eni-bp1second") for link in links
                  if link.mac == SECOND_MAC and expected is Match.IGNORED}
    assert desired == Desired(enis=desired.enis, frozen=kept if needs_operator else frozenset(),
                              releasable_altnames=frozenset(releasable))


def test_ambiguous_names_every_link():
    links = (ETH0, ETH1, Link(9, "eth9", SECOND_MAC, True))
    d = only(desired_state(example_metadata(), Observed(links=links), CONFIG))
    assert "eth1" in d.reason and "eth9" in d.reason


def test_conflict_only_stops_the_eni_concerned():
    doc = make_doc({
        SECOND_MAC: eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253"),
        THIRD_MAC: eni_fields("10.0.2.10", "10.0.2.0/24", "10.0.2.253"),
    })
    observed = Observed(links=(ETH0, ETH1, ETH2), foreign_tables=frozenset({10003}))
    desired = desired_state(parse(doc), observed, CONFIG)
    assert [d.match for d in desired.enis] == [Match.CONFLICT, Match.MATCHED]
    assert {r.table for r in desired.rules} == {10004}
    assert desired.up_links == {ETH2}


def test_owned_rule_alone_makes_the_table_ours():
    _, _, rules = eth1_state()
    observed = Observed(links=(ETH0, ETH1), rules=rules, foreign_tables=frozenset({10003}))
    assert only(desired_state(example_metadata(), observed, CONFIG)).match is Match.MATCHED


def test_ipv6_eni_gets_its_addresses_routes_and_rules_in_the_same_table():
    fields = eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253", **{
        "ipv6s": ["2001:db8:1::10", "2001:db8:1::11"], "vswitch-ipv6-cidr-block": "2001:db8:1::/64",
        "ipv6-gateway": "fe80::1"})
    desired = desired_state(parse(make_doc({SECOND_MAC: fields})), Observed(links=(ETH0, ETH1)),
                            CONFIG)

    v6 = [IPv6Address("2001:db8:1::10"), IPv6Address("2001:db8:1::11")]
    assert desired.addresses == {Address(3, IP10, 24)} | {Address(3, ip, 64) for ip in v6}
    assert desired.routes == {
        Route(10003, NET1, 3), Route(10003, DEFAULT_ROUTE, 3, GW1),
        Route(10003, IPv6Network("2001:db8:1::/64"), 3), Route(10003, LINK_LOCAL6, 3),
        Route(10003, DEFAULT_ROUTE6, 3, IPv6Address("fe80::1"))}
    assert desired.rules == {Rule(10000, IP10, 10003)} | {Rule(10000, ip, 10003) for ip in v6}


def test_link_udev_has_not_finished_with_is_pending_not_configured():
    # An UP link cannot be renamed before Linux 6.2: wait for udev to name it.
    fresh = Link(3, "eth0", SECOND_MAC, False, initialized=False)
    desired = desired_state(example_metadata(), Observed(links=(ETH0, fresh)), CONFIG)

    d = only(desired)
    assert d.match is Match.PENDING and d.link == fresh
    assert "udev" in d.reason
    assert not (desired.addresses or desired.routes or desired.rules or desired.up_links)


def test_engine_waits_for_udev_only_while_a_listed_link_is_uninitialized():
    from eni_agent.engine import waiting_for_udev

    fresh = Link(3, "eth0", SECOND_MAC, False, initialized=False)
    named = Link(3, "ens5", SECOND_MAC, False)
    assert waiting_for_udev(desired_state(example_metadata(), Observed(links=(ETH0, fresh)), CONFIG))
    assert not waiting_for_udev(desired_state(example_metadata(), Observed(links=(ETH0, named)),
                                              CONFIG))
    assert not waiting_for_udev(desired_state(example_metadata(), Observed(links=(ETH0,)), CONFIG))


# -- an ENI the metadata sets aside as invalid (issue 12 §4) --------------------------

def _with_invalid_second(third: bool = False):
    """The example, its secondary ENI invalid (gateway outside its CIDR)."""
    enis = {SECOND_MAC: eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.2.253")}
    if third:
        enis[THIRD_MAC] = eni_fields("10.0.2.10", "10.0.2.0/24", "10.0.2.253")
    metadata = parse(make_doc(enis))
    assert [bad.mac for bad in metadata.invalid] == [SECOND_MAC]
    return metadata


def test_invalid_eni_keeps_exactly_what_the_agent_gave_it():
    observed = converged_observed(links=(ETH0, ETH1, ETH2))
    owned = observed.addresses | observed.routes | observed.rules
    desired = desired_state(_with_invalid_second(third=True), observed, CONFIG)

    assert desired.frozen == owned
    assert [d.eni.mac for d in desired.enis] == [THIRD_MAC]  # the valid one goes ahead
    assert {r.table for r in desired.rules} == {10004} and desired.up_links == {ETH2}
    changes = plan(desired, observed)
    assert changes and {c.ifindex for c in changes} <= {ETH2.index, None}
    assert not [c for c in changes if c.action is Action.REMOVE]
    assert not [c for c in changes if isinstance(c.target, Rule) and c.target.table == TABLE1]


def test_invalid_eni_with_nothing_configured_gets_nothing():
    desired = desired_state(_with_invalid_second(), Observed(links=(ETH0, ETH1)), CONFIG)
    assert desired == Desired(enis=())
    assert plan(desired, Observed(links=(ETH0, ETH1))) == []


@pytest.mark.parametrize("config", [config_with(ignore_macs=(SECOND_MAC,)),
                                    config_with(ignore_interfaces=("eth*",))],
                         ids=["by MAC", "by name"])
def test_an_ignored_invalid_eni_is_let_go_of_like_any_ignored_eni(config):
    observed = converged_observed()
    desired = desired_state(_with_invalid_second(), observed, config)
    assert desired.frozen == frozenset()
    assert {c.action for c in plan(desired, observed)} == {Action.REMOVE}


def test_invalid_eni_without_its_link_freezes_nothing_else():
    observed = converged_observed(links=(ETH0, ETH2))  # eth1's state, but no eth1 link
    desired = desired_state(_with_invalid_second(), observed, CONFIG)
    assert desired.frozen == frozenset()


# -- delegated prefixes (issue 12 §6) ---------------------------------------------------

def _prefix_metadata(**fields):
    base = eni_fields(["10.0.1.10", "10.0.1.11"], "10.0.1.0/24", "10.0.1.253", **fields)
    return parse(make_doc({SECOND_MAC: base}))


def test_each_delegated_prefix_gets_a_rule_to_the_eni_table():
    metadata = _prefix_metadata(**{"ipv4-prefixes": ["10.0.1.32/28", "10.0.1.48/28"]})
    desired = desired_state(metadata, Observed(links=(ETH0, ETH1)), CONFIG)

    addresses, routes, rules = eth1_state()
    assert desired.rules == rules | {Rule(10000, IPv4Network("10.0.1.32/28"), TABLE1),
                                     Rule(10000, IPv4Network("10.0.1.48/28"), TABLE1)}
    assert desired.routes == routes  # the prefix leaves by the ENI's default route
    assert desired.addresses == addresses  # its addresses are for others to use


def test_ipv6_prefix_gets_a_rule_and_makes_the_table_ipv6():
    metadata = _prefix_metadata(**{"vswitch-ipv6-cidr-block": "2001:db8:1::/64",
                                   "ipv6-gateway": "fe80::1",
                                   "ipv6-prefixes": "[2001:db8:1:0:1::/80]"})
    desired = desired_state(metadata, Observed(links=(ETH0, ETH1)), CONFIG)

    _, routes, rules = eth1_state()
    assert desired.rules == rules | {Rule(10000, IPv6Network("2001:db8:1:0:1::/80"), TABLE1)}
    assert desired.routes == routes | {
        Route(TABLE1, IPv6Network("2001:db8:1::/64"), 3), Route(TABLE1, LINK_LOCAL6, 3),
        Route(TABLE1, DEFAULT_ROUTE6, 3, IPv6Address("fe80::1"))}
    assert {a.version for a in desired.addresses} == {4}  # no IPv6 address of its own


def test_host_rules_are_networks_of_one_address():
    desired = desired_state(example_metadata(), Observed(links=(ETH0, ETH1)), CONFIG)
    assert {r.src for r in desired.rules} == {IPv4Network("10.0.1.10/32"),
                                              IPv4Network("10.0.1.11/32")}
    assert Rule(10000, IP10, TABLE1) == Rule(10000, IPv4Network("10.0.1.10/32"), TABLE1)
    assert Rule(10000, IP10, TABLE1).describe({}) == "rule 10000: from 10.0.1.10 lookup 10003"
    assert (Rule(10000, IPv4Network("10.0.1.32/28"), TABLE1).describe({})
            == "rule 10000: from 10.0.1.32/28 lookup 10003")


def test_prefix_rules_are_planned_after_routes_and_removed_when_no_longer_delegated():
    metadata = _prefix_metadata(**{"ipv4-prefixes": ["10.0.1.32/28"]})
    prefix_rule = Rule(10000, IPv4Network("10.0.1.32/28"), TABLE1)

    changes = plan(desired_state(metadata, Observed(links=(ETH0, ETH1)), CONFIG),
                   Observed(links=(ETH0, ETH1)))
    kinds = [type(c.target).__name__ for c in changes if c.action is Action.ADD]
    assert kinds.index("Rule") > max(i for i, k in enumerate(kinds) if k == "Route")
    assert Change(Action.ADD, prefix_rule) in changes

    observed = converged_observed()
    observed = observed._replace(rules=observed.rules | {prefix_rule})
    changes = plan(desired_state(example_metadata(), observed, CONFIG), observed)
    assert changes == [Change(Action.REMOVE, prefix_rule)]
