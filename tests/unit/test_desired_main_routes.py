"""Routes in `main` (issue 16 §3): the vswitch of an ENI outside the
primary's, and the config's [[routes]], each through its ENI from the ENI's
primary IP, marked; never beside a route in `main` the agent did not add."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from eni_agent.config import make_config
from eni_agent.desired import desired_state
from eni_agent.errors import InvalidInput
from eni_agent.plan import Action, Change, plan
from eni_agent.state import Address, Observed, Route

from tests.harness.documents import SECOND_MAC, THIRD_MAC, assert_one_line, eni_fields, example_metadata, make_doc, parse
from tests.harness.observed import ETH0, ETH1, ETH2, converged_observed

MAIN = 254
SRC1 = ip_address("10.0.1.10")
GW1 = ip_address("10.0.1.253")
V6 = {"ipv6s": ["2001:db8:1::10"], "vswitch-ipv6-cidr-block": "2001:db8:1::/64",
      "ipv6-gateway": "2001:db8:1::1"}


def metadata(second: dict | None = None, third: dict | None = None, thin_primary=False):
    enis = {SECOND_MAC: second or eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253",
                                              **{"network-interface-id": "eni-second"})}
    if third:
        enis[THIRD_MAC] = third
    doc = make_doc(enis)
    if thin_primary:
        primary = doc["network"]["interfaces"]["macs"][doc["mac"]]
        for key in list(primary):
            if key not in ("gateway", "netmask", "network-interface-id"):
                del primary[key]
    return parse(doc)


def main_of(config_values: dict, meta=None, observed=None) -> set[Route]:
    observed = observed or Observed(links=(ETH0, ETH1, ETH2))
    desired = desired_state(meta or metadata(), observed, make_config(config_values))
    return {r for r in desired.routes if r.table == MAIN}


def route(dst, oif=ETH1.index, gateway=None, src=SRC1) -> Route:
    return Route(MAIN, ip_network(dst), oif, ip_address(gateway) if gateway else None,
                 ip_address(src))


@pytest.mark.parametrize("config, meta, expected", [
    ({}, None, {route("10.0.1.0/24")}),
    ({"subnet_routes": False}, None, set()),
    # an ENI in the primary's vswitch adds nothing to main
    ({}, metadata(eni_fields("10.0.0.20", "10.0.0.0/24", "10.0.0.253")), set()),
    ({}, metadata(eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253", **V6)),
     {route("10.0.1.0/24"), route("2001:db8:1::/64", src="2001:db8:1::10")}),
    ({"routes": [{"eni": "eni-second", "to": ["10.9.0.0/16", "10.8.0.0/24"]}]}, None,
     {route("10.0.1.0/24"), route("10.9.0.0/16", gateway=GW1),
      route("10.8.0.0/24", gateway=GW1)}),
    ({"routes": [{"eni": SECOND_MAC.upper(), "to": ["10.9.0.0/16"]}], "subnet_routes": False},
     None, {route("10.9.0.0/16", gateway=GW1)}),
    ({"routes": [{"eni": "eni-second", "to": ["fd00:9::/48"]}], "subnet_routes": False},
     metadata(eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253",
                         **{"network-interface-id": "eni-second"}, **V6)),
     {route("fd00:9::/48", gateway="2001:db8:1::1", src="2001:db8:1::10")}),
    # a [[routes]] destination that is the vswitch: through the gateway, once
    ({"routes": [{"eni": "eni-second", "to": ["10.0.1.0/24"]}]}, None,
     {route("10.0.1.0/24", gateway=GW1)}),
    # two ENIs in one other vswitch: the lower ifindex has the route
    ({}, metadata(third=eni_fields("10.0.1.20", "10.0.1.0/24", "10.0.1.253")),
     {route("10.0.1.0/24")}),
], ids=["other vswitch", "off", "primary's vswitch", "IPv6 too", "[[routes]]", "by MAC",
        "IPv6 destination", "destination is the vswitch", "shared vswitch"])
def test_routes_in_main(config, meta, expected):
    assert main_of(config, meta) == expected


def test_the_primarys_vswitch_is_known_from_its_address_when_its_entry_is_thin():
    meta = metadata(eni_fields("10.0.0.20", "10.0.0.0/24", "10.0.0.253"), thin_primary=True)
    assert main_of({}, meta) == {route("10.0.0.0/24", src="10.0.0.20")}
    dhcp = Observed(links=(ETH0, ETH1, ETH2),
                    foreign_addresses=frozenset({Address(ETH0.index, ip_address("10.0.0.5"), 24)}))
    assert main_of({}, meta, dhcp) == set()


def test_a_route_in_main_the_agent_did_not_add_is_never_replaced_and_said_so():
    observed = Observed(links=(ETH0, ETH1, ETH2), foreign_main_destinations=frozenset(
        {(4, ip_address("10.0.1.0"), 24)}))
    config = make_config({"routes": [{"eni": "eni-second", "to": ["10.9.0.0/16"]}]})
    desired = desired_state(metadata(), observed, config)
    assert {r for r in desired.routes if r.table == MAIN} == {route("10.9.0.0/16", gateway=GW1)}
    assert desired.notes == ("main already has a route to 10.0.1.0/24 that eni-agent did not "
                             "add: left as it is, so 10.0.1.0/24 is not routed through eth1",)


def test_an_eni_named_but_not_attached_waits_and_is_no_error():
    config = make_config({"routes": [{"eni": "eni-later", "to": ["10.9.0.0/16"]}]})
    desired = desired_state(metadata(), Observed(links=(ETH0, ETH1)), config)
    assert {r for r in desired.routes if r.table == MAIN} == {route("10.0.1.0/24")}
    assert desired.notes == ("[[routes]] eni eni-later is not attached (or not configured): "
                             "its routes to 10.9.0.0/16 wait for it",)


def test_config_routes_follow_the_eni_and_go_with_cleanup():
    config = make_config({"routes": [{"eni": "eni-bp1second", "to": ["10.9.0.0/16"]}],
                          "subnet_routes": False})
    observed = converged_observed()
    wanted = route("10.9.0.0/16", gateway=GW1)
    assert plan(desired_state(example_metadata(), observed, config), observed) == [
        Change(Action.ADD, wanted)]
    routed = observed._replace(routes=observed.routes | {wanted})
    assert plan(desired_state(example_metadata(), routed, config), routed) == []
    detached = routed._replace(links=(ETH0,))  # the ENI's link is gone
    assert Change(Action.REMOVE, wanted) in plan(desired_state(example_metadata(), detached,
                                                               config), detached)
    assert Change(Action.REMOVE, wanted) in plan(desired_state(None, routed, config), routed)


def test_a_route_in_main_describes_itself_as_ip_route_does():
    assert route("10.9.0.0/16", gateway=GW1).describe({3: "eth1"}) == \
        "route 10.9.0.0/16 via 10.0.1.253 dev eth1 src 10.0.1.10 table main"


@pytest.mark.parametrize("routes, reason", [
    ([{"eni": "eni-second", "to": ["10.9.0.1/16"]}], "not a CIDR"),
    ([{"eni": "eni-second", "to": ["nonsense"]}], "not a CIDR"),
    ([{"eni": "eni-second", "to": ["0.0.0.0/0"]}], "default route"),
    ([{"eni": "eni-second", "to": ["::/0"]}], "default route"),
    ([{"eni": "eni-second", "to": ["10.9.0.0/16"]}, {"eni": "eni-third", "to": ["10.9.0.0/16"]}],
     "claimed twice"),
    ([{"eni": "eni-second", "to": ["10.9.0.0/16", "10.9.0.0/16"]}], "claimed twice"),
    ([{"eni": "eni-second", "to": []}], "empty"),
    ([{"eni": "nic7", "to": ["10.9.0.0/16"]}], "not a MAC address or an ENI id"),
    ([{"eni": "eni-second", "to": ["10.9.0.0/16"], "via": "x"}], "via"),
], ids=["host bits", "not an address", "default", "IPv6 default", "twice", "twice in one",
        "empty", "bad ENI", "unknown key"])
def test_bad_routes_are_refused_in_one_line(routes, reason):
    with pytest.raises(InvalidInput) as e:
        make_config({"routes": routes})
    assert reason in str(e.value) and "routes" in str(e.value)
    assert_one_line(str(e.value))
