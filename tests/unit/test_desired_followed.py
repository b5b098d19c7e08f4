"""Addresses others put on a managed ENI (issue 16 §1): followed with a
marked `from <address> lookup <ENI table>` rule when inside the ENI's
vswitch; never touched themselves; warned about when outside."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from eni_agent.engine import preview
from eni_agent.desired import desired_state
from eni_agent.plan import Action, Change, plan
from eni_agent.report import report_json, report_text
from eni_agent.state import Address, Link, Rule

from tests.harness.kernel_answers import ObservedKernel
from tests.harness.documents import SECOND_MAC, eni_fields, example_metadata, make_doc, parse
from tests.harness.observed import CONFIG, ETH0, ETH1, TABLE1, config_with, converged_observed

VIP = ip_address("10.0.1.100")
ETH1_V6_DOC = make_doc({SECOND_MAC: eni_fields(
    "10.0.1.10", "10.0.1.0/24", "10.0.1.253", ipv6s=["2001:db8:1::10"],
    **{"vswitch-ipv6-cidr-block": "2001:db8:1::/64", "ipv6-gateway": "2001:db8:1::1"})})


def on_eth1(*texts: str) -> frozenset[Address]:
    return frozenset(Address(ETH1.index, ip_address(t.split("/")[0]), int(t.split("/")[1]))
                     for t in texts)


@pytest.mark.parametrize("foreign, followed", [
    (on_eth1("10.0.1.100/32"), {"10.0.1.100"}),  # keepalived's VIP
    (on_eth1("10.0.1.100/24", "10.0.1.101/32"), {"10.0.1.100", "10.0.1.101"}),
    (on_eth1("10.0.9.100/32"), set()),  # outside the vswitch
    (on_eth1("10.0.1.10/24"), set()),  # the ENI's own (a DHCP client's copy): its rule exists
    (on_eth1("fe80::1/64"), set()),  # the kernel's
    (frozenset({Address(ETH0.index, VIP, 32)}), set()),  # on another link
    (on_eth1("10.0.1.100/32") | {Address(ETH0.index, VIP, 24)}, set()),  # and on another link
], ids=["VIP", "two", "outside", "own address", "link-local", "other link", "held twice"])
def test_followed_addresses_get_a_rule_to_the_eni_table(foreign, followed):
    observed = converged_observed(foreign_addresses=foreign)
    desired = desired_state(example_metadata(), observed, CONFIG)
    extra = {r for r in desired.rules if r not in observed.rules}
    assert extra == {Rule(CONFIG.rule_priority, ip_address(ip), TABLE1) for ip in followed}
    assert {str(a.ip) for a in desired.enis[0].following.followed} == followed
    # the address itself is never the agent's to add or remove
    assert not [c for c in plan(desired, observed) if isinstance(c.target, Address)]


def test_an_ipv6_address_inside_the_ipv6_vswitch_is_followed():
    observed = converged_observed(foreign_addresses=on_eth1("2001:db8:1::100/128",
                                                            "2001:db8:9::1/128"))
    desired = desired_state(parse(ETH1_V6_DOC), observed, CONFIG)
    (d,) = desired.enis
    assert {str(a.ip) for a in d.following.followed} == {"2001:db8:1::100"}
    assert [(str(a.ip), why) for a, why in d.following.unfollowed] == [
        ("2001:db8:9::1", "outside the vswitch 2001:db8:1::/64")]


def test_the_rule_goes_when_the_address_goes_and_with_cleanup():
    with_vip = converged_observed(foreign_addresses=on_eth1("10.0.1.100/32"))
    rule = Rule(CONFIG.rule_priority, VIP, TABLE1)
    assert plan(desired_state(example_metadata(), with_vip, CONFIG), with_vip) == [
        Change(Action.ADD, rule)]
    followed = with_vip._replace(rules=with_vip.rules | {rule})
    assert plan(desired_state(example_metadata(), followed, CONFIG), followed) == []
    gone = followed._replace(foreign_addresses=frozenset())
    assert plan(desired_state(example_metadata(), gone, CONFIG), gone) == [
        Change(Action.REMOVE, rule)]
    assert Change(Action.REMOVE, rule) in plan(desired_state(None, followed, CONFIG), followed)


def test_follow_addresses_false_turns_it_off():
    observed = converged_observed(foreign_addresses=on_eth1("10.0.1.100/32"))
    desired = desired_state(example_metadata(), observed, config_with(follow_addresses=False))
    assert plan(desired, observed) == []


def test_status_lists_followed_addresses_and_says_why_others_are_not():
    observed = converged_observed(foreign_addresses=on_eth1("10.0.1.100/32", "192.168.5.5/32"))
    observed = observed._replace(rules=observed.rules | {Rule(CONFIG.rule_priority, VIP, TABLE1)})
    report = preview(ObservedKernel(observed), example_metadata(), CONFIG)
    (eni,) = report.enis
    assert report.converged and eni.followed == ["10.0.1.100/32"]
    assert eni.warnings == ["eth1 also holds 192.168.5.5/32, added by another tool: not routed "
                            "through the ENI (outside the vswitch 10.0.1.0/24; the VPC would "
                            "drop its replies)"]
    assert "  followed: 10.0.1.100/32" in report_text(report).splitlines()
    assert '"followed": [\n        "10.0.1.100/32"\n      ]' in report_json(report)


def test_a_followed_address_on_a_frozen_eni_keeps_its_rule():
    """eth1 is listed twice (ambiguous): whatever the agent owns there stays."""
    twin = Link(9, "eth9", ETH1.mac, True)
    rule = Rule(CONFIG.rule_priority, VIP, TABLE1)
    observed = converged_observed(links=(ETH0, ETH1, twin),
                                  foreign_addresses=on_eth1("10.0.1.100/32"))
    observed = observed._replace(rules=observed.rules | {rule})
    desired = desired_state(example_metadata(), observed, CONFIG)
    assert rule in desired.frozen and plan(desired, observed) == []


def test_an_eni_set_down_lets_go_of_a_followed_rule_once_its_address_is_gone():
    """keepalived gives its VIP up when the ENI goes down: the rule goes with
    it, though the ENI's own state stays as it is."""
    from tests.harness.observed import ETH1_DOWN
    rule = Rule(CONFIG.rule_priority, VIP, TABLE1)
    observed = converged_observed(links=(ETH0, ETH1_DOWN))
    observed = observed._replace(rules=observed.rules | {rule})
    changes = plan(desired_state(example_metadata(), observed, CONFIG), observed)
    assert changes == [Change(Action.REMOVE, rule)]
    still_there = observed._replace(foreign_addresses=on_eth1("10.0.1.100/32"))
    assert plan(desired_state(example_metadata(), still_there, CONFIG), still_there) == []


def test_without_address_marks_nothing_is_followed():
    """Before Linux 5.18 an unmarked address with the agent's rule beside it
    passes for the agent's own: following one would get it removed."""
    observed = converged_observed(foreign_addresses=on_eth1("10.0.1.100/32"))
    observed = observed._replace(address_marks=False)
    desired = desired_state(example_metadata(), observed, CONFIG)
    (d,) = desired.enis
    assert not d.following.followed and plan(desired, observed) == []
    assert "no address marks" in d.following.unfollowed[0][1]
