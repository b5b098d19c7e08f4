"""Kernels before 5.18 drop an address's protocol (IFA_PROTO): ownership of
addresses is then inferred from the agent's own rule and routes."""

from __future__ import annotations

import socket
from ipaddress import ip_address, ip_network

import pytest

from eni_agent.netlink import wire
from eni_agent.netlink.common import kernel_marks_addresses, observed_from
from eni_agent.state import Address

PROTO = 234
LINK = wire.LinkRecord(3, "eth1", "00:16:3e:00:01:01", True, None, True)
OTHER = wire.LinkRecord(4, "eth2", "00:16:3e:00:02:01", True, None, True)


def address(index, ip, protocol=None):
    return wire.AddressRecord(index, ip_address(ip), 24, protocol)


def route(table, dst, oif, gateway=None, protocol=PROTO):
    net = ip_network(dst)
    return wire.RouteRecord(socket.AF_INET, table, protocol, wire.RTN_UNICAST, net.prefixlen,
                            net.network_address if net.prefixlen else None,
                            ip_address(gateway) if gateway else None, oif, False)


def rule(src, table, protocol=PROTO):
    return wire.RuleRecord(socket.AF_INET, table, protocol, 10000, ip_address(src), 32, 0,
                           wire.FR_ACT_TO_TBL, False)


ROUTES = [route(10003, "10.0.1.0/24", 3), route(10003, "0.0.0.0/0", 3, "10.0.1.253")]


@pytest.mark.parametrize(
    "addresses, rules, owned",
    [
        # the agent's rule for the address points at a table of its routes via that link
        ([address(3, "10.0.1.10")], [rule("10.0.1.10", 10003)], {"10.0.1.10"}),
        # no rule of the agent's for it: someone else's (a user's hand-added address)
        ([address(3, "10.0.1.99")], [rule("10.0.1.10", 10003)], set()),
        # a rule that is not the agent's proves nothing
        ([address(3, "10.0.1.10")], [rule("10.0.1.10", 10003, protocol=4)], set()),
        # the right IP but on another link than the table's routes
        ([address(4, "10.0.1.10")], [rule("10.0.1.10", 10003)], set()),
        # a marked address is the agent's anyway
        ([address(3, "10.0.1.11", PROTO)], [], {"10.0.1.11"}),
    ],
    ids=["rule+routes", "no rule", "foreign rule", "other link", "marked"],
)
def test_ownership_inferred_from_the_agents_rule(addresses, rules, owned):
    observed = observed_from([LINK, OTHER], addresses, ROUTES, rules, PROTO,
                             marks_addresses=False)
    assert {str(a.ip) for a in observed.addresses} == owned
    assert {str(a.ip) for a in observed.foreign_addresses} == (
        {str(a.ip) for a in addresses} - owned)


def test_with_marks_an_unmarked_address_is_never_the_agents():
    observed = observed_from([LINK], [address(3, "10.0.1.10")], ROUTES,
                             [rule("10.0.1.10", 10003)], PROTO, marks_addresses=True)
    assert observed.addresses == frozenset()
    assert observed.foreign_addresses == {Address(3, ip_address("10.0.1.10"), 24)}


@pytest.mark.parametrize("release, marks", [("6.18.44-fc", True), ("5.18.0", True),
                                            ("5.17.15", False), ("4.19.91-27.al7.x86_64", False),
                                            ("3.10.0-1160.el7.x86_64", False)])
def test_kernel_version_decides(monkeypatch, release, marks):
    monkeypatch.delenv("ENI_AGENT_ADDRESS_MARKS", raising=False)
    monkeypatch.setattr("os.uname", lambda: type("U", (), {"release": release})())
    assert kernel_marks_addresses() is marks
