"""Containers on the host (issue 12 §8): `main_table_first` puts
`from all lookup main suppress_prefixlength 0` before the ENI rules;
`manage_only` configures only the named ENIs and leaves every other NIC's
state as it is; Terway's rules are noticed."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

import pytest

from eni_agent.desired import (Match, desired_state, host_warnings, ignored_reason,
                               terway_seen)
from eni_agent.plan import Action, Change, plan
from eni_agent.state import Address, Observed, Route, Rule

from tests.harness.documents import (SECOND_MAC, THIRD_MAC, eni_fields, example_metadata, make_doc,
                                     parse)
from tests.harness.enis import PRIMARY_MAC
from tests.harness.observed import (CONFIG, ETH0, ETH1, ETH2, IP10, IP11, config_with,
                                    converged_observed, eth1_state)

MAIN_FIRST = config_with(main_table_first=True)
MAIN4 = Rule(9999, IPv4Network("0.0.0.0/0"), 254, 0)
MAIN6 = Rule(9999, IPv6Network("::/0"), 254, 0)
V6 = dict(ipv6s=["2001:db8:1::10"], **{"vswitch-ipv6-cidr-block": "2001:db8:1::/64",
                                       "ipv6-gateway": "2001:db8:1::1"})


def two_enis(**second):
    return parse(make_doc({SECOND_MAC: eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253",
                                                  **{"network-interface-id": "eni-second",
                                                     **second}),
                           THIRD_MAC: eni_fields("10.0.2.10", "10.0.2.0/24", "10.0.2.1",
                                                 **{"network-interface-id": "eni-third"})}))


# -- main_table_first ----------------------------------------------------------------


@pytest.mark.parametrize("config, second, links, expected", [
    (CONFIG, {}, (ETH0, ETH1, ETH2), set()),
    (MAIN_FIRST, {}, (ETH0, ETH1, ETH2), {MAIN4}),
    (MAIN_FIRST, V6, (ETH0, ETH1, ETH2), {MAIN4, MAIN6}),
    (MAIN_FIRST, {}, (ETH0,), set()),  # no ENI rules: nothing to go before
    (config_with(main_table_first=True, rule_priority=3), {}, (ETH0, ETH1),
     {MAIN4._replace(priority=2)}),
], ids=["off", "on", "on with IPv6", "no NIC yet", "priority rule_priority - 1"])
def test_main_table_first_rule_per_family_of_the_eni_rules(config, second, links, expected):
    desired = desired_state(two_enis(**second), Observed(links=links), config)
    assert {r for r in desired.rules if r.table == 254} == expected
    assert all(r.priority < config.rule_priority for r in desired.rules if r.table == 254)


def test_main_table_first_rule_is_added_after_the_eni_rules_and_removed_when_off():
    observed = converged_observed()
    changes = plan(desired_state(example_metadata(), observed, MAIN_FIRST), observed)
    # each ENI source looks its own table up first, refusing its default route
    subnet_first = [Rule(9998, ip, 10003, 0) for ip in (IP10, IP11)]
    assert changes == [Change(Action.ADD, r) for r in subnet_first] + [
        Change(Action.ADD, MAIN4._replace(priority=9999))]

    with_rule = observed._replace(rules=observed.rules | {MAIN4, *subnet_first})
    assert plan(desired_state(example_metadata(), with_rule, MAIN_FIRST), with_rule) == []
    assert plan(desired_state(example_metadata(), with_rule, CONFIG), with_rule) == [
        Change(Action.REMOVE, r) for r in [*subnet_first, MAIN4]]
    # cleanup removes it too
    assert Change(Action.REMOVE, MAIN4) in plan(desired_state(None, with_rule, MAIN_FIRST),
                                                with_rule)


def test_main_table_first_rule_stays_for_an_eni_left_as_it_is():
    """The only ENI is invalid now: its rules stay, so the rule before them stays."""
    doc = make_doc({SECOND_MAC: eni_fields("10.0.1.10", "10.0.1.0/24", "10.9.9.9")})
    observed = converged_observed()
    observed = observed._replace(rules=observed.rules | {MAIN4})
    desired = desired_state(parse(doc), observed, MAIN_FIRST)
    assert MAIN4 in desired.rules
    assert plan(desired, observed) == []


def test_main_table_first_rule_describes_itself_as_ip_rule_does():
    assert MAIN4.describe({}) == "rule 9999: from all lookup main suppress_prefixlength 0"
    assert MAIN6.describe({}) == ("rule 9999: from all (IPv6) lookup main "
                                  "suppress_prefixlength 0")
    assert MAIN4 != Rule(9999, IPv4Network("0.0.0.0/0"), 254)  # the suppressor is identity


# -- manage_only ---------------------------------------------------------------------


@pytest.mark.parametrize("manage_only, matched", [
    ((), {SECOND_MAC, THIRD_MAC}),
    ((SECOND_MAC.upper(),), {SECOND_MAC}),
    (("eni-third",), {THIRD_MAC}),
    (("eni-third", SECOND_MAC), {SECOND_MAC, THIRD_MAC}),
    (("eni-elsewhere",), set()),
], ids=["empty: all", "by MAC (any case)", "by id", "both", "none listed"])
def test_manage_only_configures_only_the_named_enis(manage_only, matched):
    config = config_with(manage_only=manage_only)
    desired = desired_state(two_enis(), Observed(links=(ETH0, ETH1, ETH2)), config)
    assert {d.eni.mac for d in desired.enis if d.match is Match.MATCHED} == matched
    for d in desired.enis:
        if d.eni.mac not in matched:
            assert (d.match, d.reason) == (Match.IGNORED, "not named in manage_only")
            assert not d.rules and not d.addresses


def test_manage_only_leaves_what_the_agent_owns_on_other_nics_as_it_is():
    """eth1 was configured before manage_only named only the third ENI: its
    addresses, routes and rules stay, and nothing is added to them."""
    config = config_with(manage_only=["eni-third"])
    addresses, routes, rules = eth1_state()
    observed = converged_observed(links=(ETH0, ETH1, ETH2))
    desired = desired_state(two_enis(), observed, config)
    assert {addresses, routes, rules} and addresses | routes | rules <= desired.frozen
    changes = plan(desired, observed)
    assert changes and all(c.action is Action.ADD for c in changes)
    assert all(c.target.table == 10004 for c in changes if isinstance(c.target, (Route, Rule)))
    assert all(c.target.index == 4 for c in changes if isinstance(c.target, Address))


def test_manage_only_leaves_an_unlisted_nic_alone_but_not_a_named_one():
    """A NIC whose ENI the listing leaves out: named by MAC, its state goes
    (the agent's to manage); not named, it stays."""
    observed = converged_observed()
    named = config_with(manage_only=[SECOND_MAC])
    other = config_with(manage_only=[THIRD_MAC])
    nothing_listed = parse(make_doc({}))
    assert len(plan(desired_state(nothing_listed, observed, named), observed)) == 6
    assert plan(desired_state(nothing_listed, observed, other), observed) == []


def test_ignore_macs_still_lets_go_while_manage_only_holds():
    config = config_with(ignore_macs=[SECOND_MAC])
    observed = converged_observed()
    # its six objects, and its id as eth1's altname
    assert len(plan(desired_state(example_metadata(), observed, config), observed)) == 7


@pytest.mark.parametrize("mac, eni_id, name, settings, reason", [
    (SECOND_MAC, "eni-a", "eth1", {}, ""),
    (SECOND_MAC, "eni-a", "eth1", {"ignore_macs": [SECOND_MAC]}, "MAC listed in ignore_macs"),
    (SECOND_MAC, "eni-a", "eth1", {"manage_only": ["eni-b"]}, "not named in manage_only"),
    (SECOND_MAC, None, None, {"manage_only": ["eni-b"]}, "not named in manage_only"),
    (SECOND_MAC, "eni-a", "eth1", {"manage_only": ["eni-a"]}, ""),
    (SECOND_MAC, "eni-a", "eth1", {"ignore_interfaces": ["eth*"]},
     "name matches ignore_interfaces"),
    (SECOND_MAC, "eni-a", None, {"ignore_interfaces": ["eth*"]}, ""),
], ids=["none", "ignore_macs", "not named", "no id", "named by id", "name", "no link yet"])
def test_ignored_reason(mac, eni_id, name, settings, reason):
    assert ignored_reason(mac, eni_id, name, config_with(**settings)) == reason


# -- Terway --------------------------------------------------------------------------


@pytest.mark.parametrize("priorities, seen", [
    ((0, 32766, 32767), False), ((0, 512, 32766), True), ((2048,), True), ((513, 2047), False),
])
def test_terway_is_seen_by_its_rule_priorities(priorities, seen):
    observed = Observed(foreign_rule_priorities=frozenset(priorities))
    assert terway_seen(observed) is seen
    assert bool(host_warnings(observed, CONFIG)) is seen
    # named ENIs: the operator has chosen, no warning
    assert host_warnings(observed, config_with(manage_only=["eni-a"])) == []


def test_terway_warning_names_the_setting():
    (warning,) = host_warnings(Observed(foreign_rule_priorities=frozenset({512, 2048})), CONFIG)
    assert "manage_only" in warning and "Terway" in warning


def test_a_primary_mac_in_manage_only_changes_nothing_for_the_primary():
    config = config_with(manage_only=[PRIMARY_MAC])
    desired = desired_state(example_metadata(), Observed(links=(ETH0, ETH1)), config)
    assert [(d.eni.mac, d.match) for d in desired.enis] == [(SECOND_MAC, Match.IGNORED)]
    assert desired.rules == frozenset() and IP10 not in {a.ip for a in desired.addresses}
