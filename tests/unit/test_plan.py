"""plan(desired, observed): the ordered changes, table-driven."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from eni_agent.desired import Desired, desired_state
from eni_agent.plan import Action, Change, plan
from eni_agent.state import Address, AltName, Link, Observed, Route, Rule

from tests.harness.documents import (SECOND_MAC, eni_fields, example_doc, macs_of, make_doc, parse,
                                     second_eni)
from tests.harness.observed import (CONFIG, DEFAULT, ETH0, ETH1, ETH1_ALTNAME, ETH1_DOWN, GW1,
                                    IP10, IP11, NET1, TABLE1, config_with, converged_observed,
                                    eth1_state)

ADD, REMOVE, REPLACE = Action.ADD, Action.REMOVE, Action.REPLACE
UP, KEEP = Action.LINK_UP, Action.KEEP_SECONDARIES
T = TABLE1  # 10003: table_base 10000 + eth1's ifindex 3


def doc_with(**fields):
    doc = example_doc()
    second_eni(doc).update(fields)
    return doc


def without_second():
    doc = example_doc()
    del macs_of(doc)[SECOND_MAC]
    return doc


def rule(ip, table=T, priority=10000):
    return Rule(priority, IPv4Address(ip) if isinstance(ip, str) else ip, table)


def addr(ip, prefixlen=24, index=3):
    return Address(index, IPv4Address(ip) if isinstance(ip, str) else ip, prefixlen)


FULL_ADD_ON_DOWN_LINK = [
    (KEEP, ETH1_DOWN), (UP, ETH1_DOWN),
    (ADD, addr(IP10)), (ADD, addr(IP11)),
    (ADD, Route(T, NET1, 3)), (ADD, Route(T, DEFAULT, 3, GW1)),
    (ADD, rule(IP10)), (ADD, rule(IP11)),
    (ADD, ETH1_ALTNAME),
]
REMOVE_ALL_OF_ETH1 = [
    (REMOVE, rule(IP10)), (REMOVE, rule(IP11)),
    (REMOVE, Route(T, NET1, 3)), (REMOVE, Route(T, DEFAULT, 3, GW1)),
    (REMOVE, addr(IP10)), (REMOVE, addr(IP11)),
]
ETH1_UP_LATER = ETH1._replace(up=False)  # down, but promote_secondaries already set
OWNED = dict(zip(("addresses", "routes", "rules"), eth1_state()))

CASES = [
    # id, metadata document (None: own nothing), observed, config, expected changes
    ("empty: full add in order, link down", example_doc(),
     Observed(links=(ETH0, ETH1_DOWN)), CONFIG, FULL_ADD_ON_DOWN_LINK),
    ("empty: link already up", example_doc(), Observed(links=(ETH0, ETH1)), CONFIG,
     FULL_ADD_ON_DOWN_LINK[2:]),
    ("converged: nothing to do", example_doc(), converged_observed(), CONFIG, []),
    # an operator set it down after the agent configured it (`ifdown`): theirs
    ("configured, then set down: left down", example_doc(),
     Observed(links=(ETH0, ETH1_UP_LATER), **OWNED), CONFIG, []),
    ("IP dropped: its rule, then its address", doc_with(**{"private-ipv4s": ["10.0.1.10"]}),
     converged_observed(), CONFIG, [(REMOVE, rule(IP11)), (REMOVE, addr(IP11))]),
    ("IP added: address, then rule",
     doc_with(**{"private-ipv4s": ["10.0.1.10", "10.0.1.11", "10.0.1.12"]}),
     converged_observed(), CONFIG, [(ADD, addr("10.0.1.12")), (ADD, rule("10.0.1.12"))]),
    ("ENI gone: all its owned state removed", without_second(), converged_observed(), CONFIG,
     REMOVE_ALL_OF_ETH1),
    ("ENI gone, link without promote_secondaries: set it first", without_second(),
     Observed(links=(ETH0, ETH1_DOWN), **OWNED), CONFIG, [(KEEP, ETH1_DOWN)] + REMOVE_ALL_OF_ETH1),
    ("ENI and its link gone", without_second(), converged_observed(links=(ETH0,)), CONFIG,
     REMOVE_ALL_OF_ETH1),
    ("cleanup: no metadata", None, converged_observed(), CONFIG,
     REMOVE_ALL_OF_ETH1 + [(REMOVE, ETH1_ALTNAME)]),
    ("gateway changed: REPLACE the default route", doc_with(gateway="10.0.1.1"),
     converged_observed(), CONFIG, [(REPLACE, Route(T, DEFAULT, 3, IPv4Address("10.0.1.1")))]),
    ("prefix changed: old address out, new one in",
     doc_with(**{"vswitch-cidr-block": "10.0.0.0/16", "netmask": "255.255.0.0"}),
     converged_observed(), CONFIG,
     [(REMOVE, Route(T, NET1, 3)), (REMOVE, addr(IP10)), (REMOVE, addr(IP11)),
      (ADD, addr(IP10, 16)), (ADD, addr(IP11, 16)),
      (ADD, Route(T, IPv4Network("10.0.0.0/16"), 3))]),
    ("rule priority changed: rules swapped, routes kept", example_doc(), converged_observed(),
     config_with(rule_priority=500),
     [(REMOVE, rule(IP10)), (REMOVE, rule(IP11)),
      (ADD, rule(IP10, priority=500)), (ADD, rule(IP11, priority=500))]),
    ("NIC re-attached with a new ifindex: old table out, new one in", example_doc(),
     Observed(links=(ETH0, ETH1._replace(index=7)), **OWNED), CONFIG,
     REMOVE_ALL_OF_ETH1 + [
         (ADD, addr(IP10, index=7)), (ADD, addr(IP11, index=7)),
         (ADD, Route(10007, NET1, 7)), (ADD, Route(10007, DEFAULT, 7, GW1)),
         (ADD, rule(IP10, 10007)), (ADD, rule(IP11, 10007)),
         (ADD, AltName(7, ETH1_ALTNAME.name))]),
    ("foreign address with the same IP: not added again", example_doc(),
     Observed(links=(ETH0, ETH1), foreign_addresses=frozenset({addr(IP10)})), CONFIG,
     [(ADD, addr(IP11)), (ADD, Route(T, NET1, 3)), (ADD, Route(T, DEFAULT, 3, GW1)),
      (ADD, rule(IP10)), (ADD, rule(IP11)), (ADD, ETH1_ALTNAME)]),
    ("foreign address, same IP, other prefix: not added", example_doc(),
     Observed(links=(ETH0, ETH1), foreign_addresses=frozenset({addr(IP10, 16)}), **{
         k: v for k, v in OWNED.items() if k != "addresses"} | {
         "addresses": frozenset({addr(IP11)}), "altnames": frozenset({ETH1_ALTNAME})}),
     CONFIG, []),
    ("foreign address with the IP on another link: ours still added", example_doc(),
     Observed(links=(ETH0, ETH1), foreign_addresses=frozenset({addr(IP10, index=2)}),
              **{k: v for k, v in OWNED.items() if k != "addresses"} | {
                  "addresses": frozenset({addr(IP11)}), "altnames": frozenset({ETH1_ALTNAME})}),
     CONFIG, [(ADD, addr(IP10))]),
    ("foreign state is never removed", without_second(),
     Observed(links=(ETH0, ETH1), foreign_addresses=frozenset({addr(IP10), addr("10.0.1.99")}),
              foreign_tables=frozenset({T, 254}), foreign_default_oifs=frozenset({3})),
     CONFIG, []),
    ("pending ENI: nothing", example_doc(), Observed(links=(ETH0,)), CONFIG, []),
    # An ENI that needs an operator keeps what the agent gave it (desired.frozen).
    ("ambiguous ENI: its owned state is left alone", example_doc(),
     converged_observed(links=(ETH0, ETH1, ETH1._replace(index=9, name="eth9"))), CONFIG, []),
    ("conflict ENI: its owned state is left alone", example_doc(),
     converged_observed(named_tables=frozenset({T})), CONFIG, []),
]


@pytest.mark.parametrize("doc, observed, config, expected", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_plan(doc, observed, config, expected):
    desired = desired_state(parse(doc) if doc is not None else None, observed, config)
    assert [(c.action, c.target) for c in plan(desired, observed)] == expected


def test_second_eni_is_planned_after_the_first_in_table_order():
    doc = make_doc({
        "00:16:3e:00:02:01": eni_fields("10.0.2.10", "10.0.2.0/24", "10.0.2.253"),
        SECOND_MAC: eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253"),
    })
    eth2 = Link(4, "eth2", "00:16:3e:00:02:01", True)
    observed = Observed(links=(ETH0, ETH1, eth2))
    changes = plan(desired_state(parse(doc), observed, CONFIG), observed)
    kinds = [type(c.target).__name__ for c in changes]
    assert kinds == ["Address"] * 2 + ["Route"] * 4 + ["Rule"] * 2
    tables = [c.target.table for c in changes if isinstance(c.target, Route)]
    assert tables == [10003, 10003, 10004, 10004]


def test_ipv6_eni_full_add_order():
    fields = eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253", **{
        "ipv6s": ["2001:db8:1::10"], "vswitch-ipv6-cidr-block": "2001:db8:1::/64",
        "ipv6-gateway": "fe80::1"})
    observed = Observed(links=(ETH0, ETH1))
    changes = plan(desired_state(parse(make_doc({SECOND_MAC: fields})), observed, CONFIG),
                   observed)

    v6 = IPv6Address("2001:db8:1::10")
    assert [(c.action, c.target) for c in changes] == [
        (ADD, addr(IP10)), (ADD, Address(3, v6, 64)),
        (ADD, Route(T, NET1, 3)), (ADD, Route(T, DEFAULT, 3, GW1)),
        (ADD, Route(T, IPv6Network("2001:db8:1::/64"), 3)),
        (ADD, Route(T, IPv6Network("fe80::/64"), 3)),
        (ADD, Route(T, IPv6Network("::/0"), 3, IPv6Address("fe80::1"))),
        (ADD, rule(IP10)), (ADD, Rule(10000, v6, T)),
    ]


@pytest.mark.parametrize(
    "removed, keep_first",
    [(Address(3, IPv4Address("10.0.1.99"), 24), True),
     (Address(3, IPv6Address("2001:db8:1::99"), 64), False)],
    ids=["IPv4: promote_secondaries first", "IPv6: no such need"],
)
def test_promote_secondaries_only_for_ipv4_removals(removed, keep_first):
    link = ETH1._replace(promote_secondaries=False)
    observed = Observed(links=(ETH0, link), addresses=frozenset({removed}))
    changes = plan(desired_state(None, observed, CONFIG), observed)
    expected = [(KEEP, link)] * keep_first + [(REMOVE, removed)]
    assert [(c.action, c.target) for c in changes] == expected


def test_plan_depends_only_on_the_values():
    """Equal inputs built in different orders give the same plan, so the plan
    `status` and `--dry-run` preview is the one `sync` applies. (The inputs
    are immutable values: that plan leaves them unchanged needs no test.)"""
    ips = [IPv4Address(f"10.0.1.{i}") for i in range(10, 60)]
    owned = [addr(ip) for ip in ips] + [rule(ip) for ip in ips]

    def observed(values):
        return Observed(links=(ETH0, ETH1),
                        addresses=frozenset(v for v in values if isinstance(v, Address)),
                        rules=frozenset(v for v in values if isinstance(v, Rule)))

    forward, backward = observed(owned), observed(owned[::-1])
    assert forward == backward
    assert plan(Desired(), forward) == plan(Desired(), backward)


@pytest.mark.parametrize(
    "change, text",
    [
        (Change(ADD, addr(IP10)), "add address 10.0.1.10/24 dev eth1"),
        (Change(REMOVE, rule(IP11)), "remove rule 10000: from 10.0.1.11 lookup 10003"),
        (Change(REPLACE, Route(T, DEFAULT, 3, GW1)),
         "replace route default via 10.0.1.253 dev eth1 table 10003"),
        (Change(ADD, Route(T, NET1, 3)), "add route 10.0.1.0/24 dev eth1 table 10003"),
        (Change(ADD, Route(T, NET1, 42)), "add route 10.0.1.0/24 dev #42 table 10003"),
        (Change(UP, ETH1), "set link eth1 up"),
        (Change(KEEP, ETH1), "set promote_secondaries on eth1"),
    ],
)
def test_change_describe(change, text):
    assert change.describe({2: "eth0", 3: "eth1"}) == text


@pytest.mark.parametrize(
    "change, ifindex",
    [(Change(ADD, addr(IP10)), 3), (Change(ADD, Route(T, NET1, 3)), 3), (Change(UP, ETH1), 3),
     (Change(ADD, rule(IP10)), None)],
)
def test_change_ifindex(change, ifindex):
    assert change.ifindex == ifindex


# Without address marks (Linux < 5.18) an address is known as the agent's only
# by its rule and an on-link route of its table beside it: an interrupted run
# must never leave one without them.
WITHOUT_MARKS = [
    ("add", example_doc(), Observed(links=(ETH0, ETH1_DOWN), address_marks=False), [
        (KEEP, ETH1_DOWN), (UP, ETH1_DOWN),
        (ADD, Route(T, NET1, 3)),  # on-link: needs no address
        (ADD, rule(IP10)), (ADD, rule(IP11)),
        (ADD, addr(IP10)), (ADD, addr(IP11)),
        (ADD, Route(T, DEFAULT, 3, GW1)),  # via a gateway: needs an IPv4 address on the link
        (ADD, ETH1_ALTNAME),
    ]),
    ("remove", None, converged_observed()._replace(address_marks=False), [
        (REMOVE, addr(IP10)), (REMOVE, addr(IP11)),
        (REMOVE, rule(IP10)), (REMOVE, rule(IP11)),
        (REMOVE, Route(T, NET1, 3)), (REMOVE, Route(T, DEFAULT, 3, GW1)),
        (REMOVE, ETH1_ALTNAME),
    ]),
]


@pytest.mark.parametrize("doc, observed, expected", [c[1:] for c in WITHOUT_MARKS],
                         ids=[c[0] for c in WITHOUT_MARKS])
def test_without_address_marks_no_address_is_ever_without_its_rule_and_route(
        doc, observed, expected):
    metadata = parse(doc) if doc is not None else None
    changes = plan(desired_state(metadata, observed, CONFIG), observed)
    assert [(c.action, c.target) for c in changes] == expected
