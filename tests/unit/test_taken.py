"""No address of another NIC is ever taken: the pure decision (which listed
address or prefix clashes with a held one), the model's refusal of an ENI
listing the primary's own address, and the engine setting such an ENI aside
while the others are planned."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import pytest

from eni_agent.engine import _desired, preview
from eni_agent.errors import ExitCode
from eni_agent.model import Eni
from eni_agent.plan import Action, plan
from eni_agent.report import EniState, report_text
from eni_agent.state import Address, Link, Observed
from eni_agent.taken import first_clash

from tests.harness.kernel_answers import ObservedKernel
from tests.harness.documents import SECOND_MAC, THIRD_MAC, eni_fields, macs_of, make_doc, parse
from tests.harness.enis import PRIMARY_MAC
from tests.harness.observed import CONFIG, ETH0, ETH1, ETH2, eth1_state

ENI = Eni(SECOND_MAC, IPv4Address("10.0.1.10"),
          (IPv4Address("10.0.1.10"), IPv4Address("10.0.1.11")), IPv4Network("10.0.1.0/24"),
          IPv4Address("10.0.1.253"), "eni-second",
          ipv6s=(IPv6Address("2001:db8:1::10"),), ipv6_cidr=IPv6Network("2001:db8:1::/64"),
          ipv6_gateway=IPv6Address("2001:db8:1::1"),
          ipv4_prefixes=(IPv4Network("10.0.1.64/28"),),
          ipv6_prefixes=(IPv6Network("2001:db8:1:0:1::/80"),))


@pytest.mark.parametrize("held, expected", [
    ({}, None),
    ({"10.0.0.5": "eth0"}, None),  # not listed: no clash
    ({"10.0.1.10": "eth0"}, ("primary-ip-address", "10.0.1.10", "10.0.1.10", "eth0")),
    ({"10.0.1.11": "lo"}, ("private-ipv4s", "10.0.1.11", "10.0.1.11", "lo")),
    ({"2001:db8:1::10": "eth0"}, ("ipv6s", "2001:db8:1::10", "2001:db8:1::10", "eth0")),
    ({"10.0.1.70": "docker0"}, ("ipv4-prefixes", "10.0.1.64/28", "10.0.1.70", "docker0")),
    ({"10.0.1.80": "eth0"}, None),  # just past the /28
    ({"2001:db8:1:0:1:0:0:5": "eth0"},
     ("ipv6-prefixes", "2001:db8:1:0:1::/80", "2001:db8:1:0:1::5", "eth0")),
    # the first listed clash wins: addresses before prefixes
    ({"10.0.1.70": "eth3", "10.0.1.11": "eth0"},
     ("private-ipv4s", "10.0.1.11", "10.0.1.11", "eth0")),
])
def test_the_first_listed_address_or_prefix_holding_a_held_address(held, expected):
    clash = first_clash(ENI, {ip_address(ip): who for ip, who in held.items()})
    if expected is None:
        assert clash is None
    else:
        assert (clash.field, str(clash.listed), str(clash.held), clash.holder) == expected


def test_a_prefix_may_hold_addresses_on_links_that_are_not_nics():
    """A container's address on `lo` or a bridge, inside the ENI's delegated
    prefix, is what the prefix is for: only NICs' addresses count for prefixes."""
    on_lo = {ip_address("10.0.1.70"): "lo"}
    assert first_clash(ENI, on_lo, nics_held={}) is None
    assert first_clash(ENI, {ip_address("10.0.1.11"): "lo"}, nics_held={}).field == "private-ipv4s"


def test_a_clash_says_the_field_the_address_and_who_holds_it():
    clash = first_clash(ENI, {ip_address("10.0.1.70"): "docker0"})
    assert clash.text() == \
        "ipv4-prefixes: 10.0.1.64/28 holds 10.0.1.70, already an address of docker0"


# -- the model: an ENI listing the primary's address (the primary's full entry) ----------

def test_an_eni_listing_the_primarys_address_is_set_aside_and_the_others_stand():
    doc = make_doc({SECOND_MAC: eni_fields(["10.0.1.10", "10.0.0.5"], "10.0.0.0/16", "10.0.1.253"),
                    THIRD_MAC: eni_fields("10.0.2.10", "10.0.2.0/24", "10.0.2.253")})
    metadata = parse(doc)
    assert [e.mac for e in metadata.secondary_enis] == [THIRD_MAC]
    (bad,) = metadata.invalid
    assert bad.mac == SECOND_MAC
    assert "private-ipv4s: 10.0.0.5 is already an address of the primary ENI " + PRIMARY_MAC \
        in bad.message and bad.message.count("\n") == 0


# -- the engine: an address on another NIC of the host -------------------------------

def thin_primary_doc(second_ips: list[str], cidr: str = "10.0.0.0/16", **extra) -> dict:
    """The primary's entry thin, as meta-data/all has it; eth1's ENI lists `second_ips`."""
    doc = make_doc({SECOND_MAC: eni_fields(second_ips, cidr, "10.0.1.253", **extra),
                    THIRD_MAC: eni_fields("10.0.2.10", "10.0.2.0/24", "10.0.2.253")})
    macs_of(doc)[PRIMARY_MAC] = {"mac": PRIMARY_MAC}
    return doc


DHCP = Address(ETH0.index, IPv4Address("10.0.0.5"), 24)  # the image's, on the primary


def observed_with(*foreign: Address, links=(ETH0, ETH1, ETH2), **owned) -> Observed:
    return Observed(links=links, foreign_addresses=frozenset(foreign), **owned)


def status_of(metadata, observed: Observed):
    return preview(ObservedKernel(observed), metadata, CONFIG)


@pytest.mark.parametrize("listed, extra, field", [
    (["10.0.1.10", "10.0.0.5"], {}, "private-ipv4s: 10.0.0.5"),
    (["10.0.0.5", "10.0.1.10"], {}, "primary-ip-address: 10.0.0.5"),
    (["10.0.1.10"], {"ipv4-prefixes": ["10.0.0.0/28"]},
     "ipv4-prefixes: 10.0.0.0/28 holds 10.0.0.5"),
])
def test_an_eni_listing_the_primarys_dhcp_address_is_invalid_and_nothing_is_planned_for_it(
        listed, extra, field):
    metadata = parse(thin_primary_doc(listed, **extra))
    observed = observed_with(DHCP)

    changes = plan(_desired(metadata, observed, CONFIG), observed)
    touched = {c.ifindex for c in changes} | {c.target.table for c in changes
                                              if c.ifindex is None}
    assert ETH1.index not in touched and CONFIG.table_base + ETH1.index not in touched
    assert any(c.ifindex == ETH2.index for c in changes)  # the other ENI is configured
    assert not any(c.action is Action.ADD and getattr(c.target, "ip", None) == DHCP.ip
                   for c in changes)

    desired = _desired(metadata, observed, CONFIG)  # as if `sync` had run
    report = status_of(metadata, observed._replace(addresses=desired.addresses,
                                                   routes=desired.routes, rules=desired.rules))
    states = {e.mac: e.state for e in report.enis}
    assert states == {SECOND_MAC: EniState.INVALID, THIRD_MAC: EniState.IN_SYNC}
    (error,) = report.enis[0].errors
    assert SECOND_MAC in error and field in error and "eth0" in error and "\n" not in error
    assert report.exit_code == ExitCode.INVALID_INPUT
    text = report_text(report)
    assert f"{SECOND_MAC} eth1: invalid" in text
    assert text.splitlines()[-1].startswith("status: NOT in sync")


def test_a_prefix_holding_an_address_on_lo_is_routed():
    metadata = parse(thin_primary_doc(["10.0.1.10"], "10.0.1.0/24",
                                      **{"ipv4-prefixes": ["10.0.1.32/28"]}))
    container = Address(1, IPv4Address("10.0.1.33"), 32)  # on lo: no MAC, not a NIC
    report = status_of(metadata, observed_with(DHCP, container))
    assert {e.mac: e.state for e in report.enis}[SECOND_MAC] == EniState.OUT_OF_SYNC


def test_an_ipv6_address_of_another_nic_makes_the_eni_invalid():
    extra = {"ipv6s": ["2001:db8:1::10"], "vswitch-ipv6-cidr-block": "2001:db8:1::/64",
             "ipv6-gateway": "2001:db8:1::1"}
    metadata = parse(thin_primary_doc(["10.0.1.10"], "10.0.1.0/24", **extra))
    held = Address(ETH0.index, IPv6Address("2001:db8:1::10"), 64)
    report = status_of(metadata, observed_with(held))
    assert {e.mac: e.state for e in report.enis}[SECOND_MAC] == EniState.INVALID
    assert "ipv6s: 2001:db8:1::10" in report.enis[0].errors[0]


def test_an_address_the_eni_already_holds_on_its_own_link_is_not_a_clash():
    metadata = parse(thin_primary_doc(["10.0.1.10"], "10.0.1.0/24"))
    own = Address(ETH1.index, IPv4Address("10.0.1.10"), 24)  # a DHCP client on eth1 put it
    report = status_of(metadata, observed_with(DHCP, own))
    assert {e.mac: e.state for e in report.enis}[SECOND_MAC] == EniState.OUT_OF_SYNC


MOVED = IPv4Address("10.0.1.11")
ETH3 = Link(index=5, name="eth3", mac="00:16:3e:00:03:01", up=True)


def test_failover_the_agents_copy_on_an_unlisted_nic_goes_in_the_same_plan():
    """10.0.1.11 moved to eth1's ENI from eth3's, which is no longer listed
    (detached from the metadata, its NIC still present): eth3's copy is the
    agent's and will be removed, so eth1 is not invalid."""
    metadata = parse(thin_primary_doc(["10.0.1.10", str(MOVED)], "10.0.1.0/24"))
    stale = Address(ETH3.index, MOVED, 24)
    observed = observed_with(DHCP, links=(ETH0, ETH1, ETH2, ETH3), addresses=frozenset({stale}))

    changes = plan(_desired(metadata, observed, CONFIG), observed)
    assert (Action.REMOVE, stale) in changes
    assert (Action.ADD, Address(ETH1.index, MOVED, 24)) in changes
    assert changes.index((Action.REMOVE, stale)) < changes.index((Action.ADD,
                                                                  Address(ETH1.index, MOVED, 24)))
    report = status_of(metadata, observed)
    assert {e.mac: e.state for e in report.enis}[SECOND_MAC] == EniState.OUT_OF_SYNC


def test_the_agents_copy_on_an_eni_left_as_it_is_stays_so_it_is_taken():
    """Where the old ENI is itself left as it is (here: invalid), its copy
    stays, and the ENI listing the address too is invalid."""
    doc = thin_primary_doc(["10.0.1.10", str(MOVED)], "10.0.1.0/24")
    macs_of(doc)[ETH3.mac] = eni_fields("10.0.3.10", "10.0.3.0/24", "10.0.9.253")  # bad gateway
    metadata = parse(doc)
    assert [bad.mac for bad in metadata.invalid] == [ETH3.mac]
    kept = Address(ETH3.index, MOVED, 24)
    observed = observed_with(DHCP, links=(ETH0, ETH1, ETH2, ETH3), addresses=frozenset({kept}))

    changes = plan(_desired(metadata, observed, CONFIG), observed)
    assert not any(c.ifindex in (ETH1.index, ETH3.index) for c in changes)
    report = status_of(metadata, observed)
    states = {e.mac: e.state for e in report.enis}
    assert states[SECOND_MAC] == states[ETH3.mac] == EniState.INVALID
    assert "10.0.1.11 is already an address of eth3" in report.enis[0].errors[0]


def test_the_agents_own_configured_state_on_a_now_invalid_eni_is_left_as_it_is():
    """eth1 was configured before eth0 came to hold one of its addresses:
    nothing of the agent's on eth1 is removed (the invalid-ENI path)."""
    metadata = parse(thin_primary_doc(["10.0.1.10", "10.0.1.11"], "10.0.1.0/24"))
    addresses, routes, rules = eth1_state()
    held = Address(ETH0.index, IPv4Address("10.0.1.11"), 24)
    observed = observed_with(DHCP, held, addresses=addresses, routes=routes, rules=rules)
    changes = plan(_desired(metadata, observed, CONFIG), observed)
    assert not any(c.action is Action.REMOVE for c in changes)
