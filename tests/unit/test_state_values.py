"""State values are named tuples that still behave as values of their own kind."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address

import pytest

from eni_agent.plan import Action, Change
from eni_agent.state import Address, Link, Route, Rule, source_network

IP = IPv4Address("10.0.1.10")


def test_values_of_different_kinds_are_never_equal():
    # Same fields, same types, same order: plain tuples would be equal.
    address, rule = Address(3, IP, 24), Rule(3, IP, 24)
    assert address != rule and not address == rule
    assert {address} - {rule} == {address}
    assert len({address, rule}) == 2
    assert Change(Action.ADD, address) != Change(Action.ADD, rule)
    assert address != (3, IP, 24)


def test_values_of_one_kind_compare_by_fields():
    assert Address(3, IP, 24) == Address(3, IPv4Address("10.0.1.10"), 24)
    assert hash(Rule(10000, IP, 10003)) == hash(Rule(10000, IPv4Address("10.0.1.10"), 10003))
    assert Address(3, IP, 24) != Address(3, IP, 25)
    assert Route(10003, IPv4Network("0.0.0.0/0"), 3, IPv4Address("10.0.1.253")) != \
        Route(10003, IPv4Network("0.0.0.0/0"), 3)


def test_values_sort_across_address_families():
    v6 = Address(3, IPv6Address("2001:db8::10"), 64)
    v4 = Address(3, IP, 24)
    assert sorted([v6, v4]) == [v4, v6]
    assert sorted([Link(4, "eth2", "00:16:3e:00:02:01", True),
                   Link(3, "eth1", "00:16:3e:00:01:01", True)])[0].index == 3


def test_values_are_immutable():
    with pytest.raises(AttributeError):
        Address(3, IP, 24).prefixlen = 25  # type: ignore[misc]



@pytest.mark.parametrize("ip", ["10.0.1.11", "2001:db8::11"])
def test_a_hosts_rule_source_is_one_object_with_or_without_its_length(ip):
    # as the kernel's rule is read (with its length) and as a desired one is built
    address = ip_address(ip)
    observed = Rule(10000, source_network(address, address.max_prefixlen), 10003)
    desired = Rule(10000, address, 10003)
    assert observed == desired and observed.src is desired.src
