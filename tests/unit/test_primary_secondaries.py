"""The primary ENI's secondary private IPs: what the agent holds on the
primary NIC, for each form of the primary's entry and each setting; and a
child link sharing an ENI's MAC is no rival to it."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from eni_agent.desired import Match, desired_state
from eni_agent.engine import _desired
from eni_agent.plan import Action, Change, plan
from eni_agent.primary import primary_secondaries
from eni_agent.state import Address, Link, Observed

from tests.harness.documents import SECOND_MAC, eni_fields, macs_of, make_doc, parse
from tests.harness.enis import PRIMARY_MAC
from tests.harness.observed import CONFIG, ETH0, ETH1, config_with

DHCP = Address(ETH0.index, IPv4Address("10.0.0.5"), 24)
IP6, IP7, IP8 = (IPv4Address(f"10.0.0.{n}") for n in (6, 7, 8))
V6 = IPv6Address("2001:db8::6")
V6_IMAGE = IPv6Address("2001:db8::5")


def doc(primary: dict | None) -> dict:
    d = make_doc({SECOND_MAC: eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253")})
    macs_of(d)[PRIMARY_MAC] = primary if primary is not None else {"mac": PRIMARY_MAC}
    return d


FULL = eni_fields(["10.0.0.5", "10.0.0.6", "10.0.0.7"], "10.0.0.0/24", "10.0.0.253")
FULL6 = eni_fields(["10.0.0.5", "10.0.0.6"], "10.0.0.0/24", "10.0.0.253",
                   **{"ipv6s": [str(V6_IMAGE), str(V6)], "vswitch-ipv6-cidr-block": "2001:db8::/64",
                      "ipv6-gateway": "2001:db8::1"})
IMAGE_V6 = Address(ETH0.index, V6_IMAGE, 64)
OURS_8 = Address(ETH0.index, IP8, 24)  # added earlier, no longer listed
OURS_6 = Address(ETH0.index, IP6, 24)
ETH9 = Link(9, "eth9", "02:00:00:00:00:09", True)


@pytest.mark.parametrize("why, primary, foreign, owned, config, hold, keep, error", [
    ("full entry: each secondary IP, not the DHCP one", FULL, (), (), CONFIG,
     {Address(2, IP6, 24), Address(2, IP7, 24)}, set(), ""),
    ("IPv6 too, not what the image put there", FULL6, (IMAGE_V6,), (), CONFIG,
     {Address(2, IP6, 24), Address(2, V6, 64, deprecated=True)}, set(), ""),
    ("already put there by the image: not added", FULL, (Address(2, IP6, 24),), (), CONFIG,
     {Address(2, IP7, 24)}, set(), ""),
    ("one no longer listed: not held (the plan removes it)", FULL, (), (OURS_8,), CONFIG,
     {Address(2, IP6, 24), Address(2, IP7, 24)}, set(), ""),
    ("thin entry: nothing to add, nothing removed", None, (), (OURS_6,), CONFIG,
     set(), {OURS_6}, ""),
    ("turned off: nothing held (the plan removes the agent's)", FULL, (), (OURS_6,),
     config_with(primary_secondary_ips=False), set(), set(), ""),
    ("another NIC holds one: none added, the agent's kept", FULL,
     (Address(ETH9.index, IP7, 32),), (OURS_6,), CONFIG, set(), {OURS_6}, "10.0.0.7"),
])
def test_what_the_agent_holds_on_the_primary(why, primary, foreign, owned, config, hold, keep,
                                             error):
    metadata = parse(doc(primary))
    observed = Observed(links=(ETH0, ETH1, ETH9), addresses=frozenset(owned),
                        foreign_addresses=frozenset({DHCP, *foreign}))
    result = primary_secondaries(metadata, observed, config)
    assert (result.addresses, result.kept) == (hold, keep), why
    assert (error in result.error and "eth9" in result.error) if error else not result.error


def test_cleanup_removes_only_the_agents_secondaries():
    observed = Observed(links=(ETH0, ETH1), addresses=frozenset({OURS_6}),
                        foreign_addresses=frozenset({DHCP}))
    assert plan(_desired(None, observed, CONFIG), observed) == [(Action.REMOVE, OURS_6)]


def test_a_full_entry_adds_them_and_touches_nothing_else_on_the_primary():
    metadata = parse(doc(FULL))
    observed = Observed(links=(ETH0, ETH1), foreign_addresses=frozenset({DHCP}))
    changes = plan(_desired(metadata, observed, CONFIG), observed)
    on_primary = [c for c in changes if c.ifindex == ETH0.index]
    assert on_primary == [(Action.ADD, Address(2, IP6, 24)), (Action.ADD, Address(2, IP7, 24))]


# -- a child link sharing the ENI's MAC ---------------------------------------------------

ETH1_PASSTHRU = Link(7, "mv0", SECOND_MAC, True, parent=ETH1.index)  # macvlan passthru


@pytest.mark.parametrize("links, match", [
    ((ETH0, ETH1, ETH1_PASSTHRU), Match.MATCHED),
    ((ETH0, ETH1_PASSTHRU, ETH1), Match.MATCHED),
    ((ETH0, ETH1, Link(8, "eth8", SECOND_MAC, True)), Match.AMBIGUOUS),  # two real NICs
    ((ETH0, ETH1, Link(8, "eth8", SECOND_MAC, True), ETH1_PASSTHRU), Match.AMBIGUOUS),
    ((ETH0, ETH1_PASSTHRU), Match.AMBIGUOUS),  # only a child: not the ENI
])
def test_a_child_link_is_no_rival_to_the_eni(links, match):
    metadata = parse(doc(None))
    (eni,) = desired_state(metadata, Observed(links=links), CONFIG).enis
    assert eni.match is match
    if match is Match.MATCHED:
        assert eni.link == ETH1


def test_an_ipv6_secondary_is_added_never_preferred_as_a_source_and_read_back_so():
    from eni_agent.netlink.messages import address_record, request

    from tests.harness.netlink_messages import decoded

    mine = Address(ETH0.index, V6, 64, deprecated=True)
    msg = request(Change(Action.ADD, mine), protocol=234)
    cacheinfo = dict(msg["attrs"])["IFA_CACHEINFO"]
    assert (cacheinfo["ifa_preferred"], cacheinfo["ifa_valid"]) == (0, 0xFFFFFFFF)
    # As the kernel dumps it: IFA_F_DEPRECATED (0x20) set in IFA_FLAGS.
    msg["attrs"] = [(k, v | 0x20 if k == "IFA_FLAGS" else v) for k, v in msg["attrs"]]
    (back,) = decoded(msg)
    assert address_record(back).deprecated
    plain = request(Change(Action.ADD, Address(ETH0.index, V6, 64)), protocol=234)
    assert "IFA_CACHEINFO" not in dict(plain["attrs"])


def test_without_address_marks_they_are_not_added_and_status_says_why():
    """Before Linux 5.18 the agent knows an address as its own only by its
    rule; these get none, so it could never tell them from the image's."""
    metadata = parse(doc(FULL))
    observed = Observed(links=(ETH0, ETH1), foreign_addresses=frozenset({DHCP}),
                        address_marks=False)
    result = primary_secondaries(metadata, observed, CONFIG)
    assert (result.addresses, result.kept) == (frozenset(), frozenset())
    assert "5.18" in result.warning
    assert not [c for c in plan(_desired(metadata, observed, CONFIG), observed)
                if c.ifindex == ETH0.index]
