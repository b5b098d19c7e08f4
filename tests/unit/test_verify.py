"""The verification's pure parts: which addresses one lookup answers for,
what an answer must be, and which rule is named when it is not."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, ip_address

import pytest

from eni_agent.engine import preview
from eni_agent.netlink.messages import LookupRecord, RuleRecord
from eni_agent.verify import Question, classes, judge

from eni_agent.state import Observed

from tests.harness.documents import example_metadata
from tests.harness.observed import CONFIG, ETH0, ETH1, ETH1_ALTNAME, GW1, config_with, eth1_state
from tests.harness.kernel_answers import MAIN_DEFAULT, ObservedKernel

IPS = [IPv4Address(f"10.0.1.{i}") for i in range(10, 14)]
TABLE = 10003
NAMES = {2: "eth0", 3: "eth1"}


def rule(priority, src=None, src_len=None, table=TABLE, protocol=234, action=1,
         selectors=False, suppress=None):
    src_len = (32 if src else 0) if src_len is None else src_len
    return RuleRecord(socket.AF_INET, table, protocol, priority,
                      ip_address(src) if src else None, src_len, 0, action, selectors, suppress)


OWN = [rule(10000, str(ip)) for ip in IPS]
DEFAULTS = [rule(0, table=255, protocol=2), rule(32766, table=254, protocol=2)]


@pytest.mark.parametrize("extra, groups", [
    ([], [IPS]),
    ([rule(100, table=254, protocol=0)], [IPS]),
    ([rule(100, "10.0.1.11", table=254, protocol=0)], [[IPS[0], IPS[2], IPS[3]], [IPS[1]]]),
    ([rule(100, "10.0.1.12", src_len=31, table=254, protocol=0)], [IPS[:2], IPS[2:]]),
    ([rule(10000, table=254, protocol=0)], [[ip] for ip in IPS]),
    ([rule(100, "10.0.1.10", table=254, protocol=0, selectors=True)], [[IPS[0]], IPS[1:]]),
], ids=["own rules only", "a rule for all", "a rule for one address", "a prefix rule",
        "a rule for all at the agent's priority", "a rule with other selectors"])
def test_addresses_no_rule_tells_apart_share_one_lookup(extra, groups):
    assert classes(IPS, DEFAULTS[:1] + extra + OWN + DEFAULTS[1:]) == groups


BEYOND = Question(IPS[0], ip_address("203.0.113.1"), "beyond the gateway", GW1, tuple(IPS))
NEAR = Question(IPS[0], ip_address("10.0.1.254"), "in the vswitch", None, (IPS[0],))
THROUGH_ENI = LookupRecord(0, 1, TABLE, 3, GW1, 0, 234)
ON_LINK = LookupRecord(0, 1, TABLE, 3, None, 24, 234)


def test_answers_through_the_eni_pass():
    rules = DEFAULTS + OWN
    assert judge(BEYOND, THROUGH_ENI, ETH1, TABLE, rules, NAMES, CONFIG) == ""
    assert judge(NEAR, ON_LINK, ETH1, TABLE, rules, NAMES, CONFIG) == ""


def test_main_answering_first_names_the_foreign_rule():
    rules = [DEFAULTS[0], rule(100, table=254, protocol=0)] + OWN + DEFAULTS[1:]
    problem = judge(BEYOND, MAIN_DEFAULT, ETH1, TABLE, rules, NAMES, CONFIG)
    assert problem == ("replies from 10.0.1.10, 10.0.1.11, 10.0.1.12 and 1 more to 203.0.113.1 "
                       "(beyond the gateway) leave through eth0 (table main), not eth1: "
                       "rule 100: from all lookup main (not eni-agent's) comes first")


def test_a_refusing_rule_is_named_when_nothing_routes_the_reply():
    rules = [rule(50, "10.0.1.10", action=8, table=0, protocol=0)] + OWN
    problem = judge(NEAR, LookupRecord(13, 0, 0, None, None, 0, 0), ETH1, TABLE, rules, NAMES,
                    CONFIG)
    assert problem.endswith("cannot be routed: rule 50: from 10.0.1.10/32 prohibit "
                            "(not eni-agent's) comes first"), problem


def test_main_table_first_answering_by_a_specific_route_is_the_design():
    config = config_with(main_table_first=True)
    mine = rule(9999, table=254, suppress=0)
    specific = LookupRecord(0, 1, 254, 2, None, 24, 2)
    assert judge(NEAR, specific, ETH1, TABLE, [mine] + OWN, NAMES, config) == ""
    # ...but its rule refuses main's default route: that answer is a defeat.
    problem = judge(BEYOND, MAIN_DEFAULT, ETH1, TABLE, [mine] + OWN, NAMES, config)
    assert "table main answered before eni-agent's rule" in problem


def test_status_fails_an_eni_the_kernel_routes_elsewhere():
    addresses, routes, rules = eth1_state()
    nl = ObservedKernel(observed_with(addresses, routes, rules))
    nl._lookup = lambda src, dst: MAIN_DEFAULT
    report = preview(nl, example_metadata(), CONFIG)
    (eni,) = report.enis
    assert (eni.state, report.exit_code) == ("failed", 3)
    assert any("leave through eth0" in e for e in eni.errors), eni.errors


def test_status_fails_an_eni_whose_addresses_lost_their_local_routes():
    addresses, routes, rules = eth1_state()
    nl = ObservedKernel(observed_with(addresses, routes, rules))
    nl.no_local_route = frozenset({IPv4Address("10.0.1.11")})
    report = preview(nl, example_metadata(), CONFIG)
    (eni,) = report.enis
    assert eni.state == "failed"
    assert eni.errors[0].startswith("the local table has no route for 10.0.1.11:"), eni.errors


def test_a_healthy_eni_stays_in_sync():
    addresses, routes, rules = eth1_state()
    report = preview(ObservedKernel(observed_with(addresses, routes, rules)), example_metadata(),
                     CONFIG)
    assert [e.state for e in report.enis] == ["in-sync"] and report.exit_code == 0


def observed_with(addresses, routes, rules):
    return Observed(links=(ETH0, ETH1), addresses=addresses, routes=routes, rules=rules,
                    altnames=frozenset({ETH1_ALTNAME}))


def test_a_plain_rule_is_named_before_one_with_other_selectors():
    marked = rule(50, table=254, protocol=0, selectors=True)  # fwmark: not this lookup's
    rules = [marked, rule(100, table=254, protocol=0)] + OWN
    problem = judge(BEYOND, MAIN_DEFAULT, ETH1, TABLE, rules, NAMES, CONFIG)
    assert problem.endswith("rule 100: from all lookup main (not eni-agent's) comes first")
