"""Kernel records, as pyroute2 decodes them, through observation and the
ownership rule: the agent observes (and so may ever delete) only what carries
its mark in the one shape it creates; everything else is somebody else's."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from eni_agent.host import kernel_marks_addresses
from eni_agent.netlink.messages import address_record, link_record, route_record, rule_record
from eni_agent.ownership import observed_from
from eni_agent.state import Address, Route, Rule

from tests.harness.netlink_messages import address, decoded, link, route, rule

PROTO = 234
LINKS = [link_record(m) for m in decoded(link(3, "eth1", "00:16:3e:00:01:01"),
                                         link(4, "eth2", "00:16:3e:00:02:01"))]


def observe(addresses=(), routes=(), rules=(), marks_addresses=True):
    return observed_from(LINKS, [address_record(m) for m in decoded(*addresses)],
                         [route_record(m) for m in decoded(*routes)],
                         [rule_record(m) for m in decoded(*rules)], PROTO,
                         marks_addresses=marks_addresses)


@pytest.mark.parametrize("kernel_route, owned", [
    (route("10.0.1.0/24"), Route(10003, ip_network("10.0.1.0/24"), 3)),
    (route("0.0.0.0/0", gateway="10.0.1.253"),
     Route(10003, ip_network("0.0.0.0/0"), 3, ip_address("10.0.1.253"))),
    (route("::/0", gateway="fe80::1"), Route(10003, ip_network("::/0"), 3, ip_address("fe80::1"))),
    (route("10.0.1.0/24", table=100), Route(100, ip_network("10.0.1.0/24"), 3)),
    (route("10.0.1.0/24", protocol=4), None),  # static: someone's
    (route("10.0.1.0/24", protocol=None or 0), None),
    (route("10.0.1.0/24", rtype=6, oif=None), None),  # a blackhole with our mark
    (route("0.0.0.0/0", gateway="10.0.1.253", multipath=True), None),
    (route("10.0.1.0/24", oif=None), None),
], ids=["subnet", "default keeps its gateway", "IPv6 default", "low table", "unmarked",
        "unspec protocol", "marked blackhole", "marked multipath", "no device"])
def test_routes(kernel_route, owned):
    observed = observe(routes=[kernel_route])
    assert observed.routes == ({owned} if owned else set())
    table = kernel_route.get_attr("RTA_TABLE")
    assert (table in observed.foreign_tables) is (owned is None)


def test_the_main_tables_routes_of_others_are_noted_by_destination():
    observed = observe(routes=[route("10.0.1.0/24", table=254, oif=4, protocol=2),
                               route("10.0.2.0/24", table=254, oif=4)])  # kernel; marked
    assert observed.foreign_main_destinations == {(4, ip_address("10.0.1.0"), 24)}


def test_a_marked_route_in_main_keeps_its_preferred_source():
    observed = observe(routes=[route("10.0.1.0/24", table=254, oif=3, prefsrc="10.0.1.10")])
    assert observed.routes == {Route(254, ip_network("10.0.1.0/24"), 3, None,
                                     ip_address("10.0.1.10"))}


def test_the_main_tables_default_routes_of_others_are_noted_by_link():
    observed = observe(routes=[route("0.0.0.0/0", table=254, oif=4, gateway="10.0.2.1",
                                     protocol=16)])  # dhcp
    assert observed.foreign_default_oifs == {4}
    assert observed.routes == set()


@pytest.mark.parametrize("kernel_rule, owned", [
    (rule("10.0.1.10"), Rule(10000, ip_address("10.0.1.10"), 10003)),
    (rule("2001:db8:1::10"), Rule(10000, ip_address("2001:db8:1::10"), 10003)),
    (rule("10.0.1.10", protocol=4), None),
    (rule("10.0.1.10", protocol=None), None),
    (rule("10.0.1.32", src_len=28), Rule(10000, ip_network("10.0.1.32/28"), 10003)),
    (rule(None), None),  # from all
    (rule("10.0.1.10", FRA_FWMARK=1), None),
    (rule("10.0.1.10", FRA_IIFNAME="eth1"), None),
    # main_table_first's subnet lookup
    (rule("10.0.1.10", FRA_SUPPRESS_PREFIXLEN=0), Rule(10000, ip_address("10.0.1.10"), 10003, 0)),
    (rule("10.0.1.10", FRA_SUPPRESS_PREFIXLEN=8), None),
    (rule("10.0.1.10", action=2), None),  # goto
], ids=["host rule", "IPv6 host rule", "unmarked", "no protocol", "a prefix", "from all",
        "fwmark", "iif", "suppress_prefixlength 0", "suppress_prefixlength 8", "not lookup"])
def test_rules(kernel_rule, owned):
    observed = observe(rules=[kernel_rule])
    assert observed.rules == ({owned} if owned else set())
    assert (10003 in observed.foreign_tables) is (owned is None)


MAIN_FIRST = Rule(9999, ip_network("0.0.0.0/0"), 254, 0)


@pytest.mark.parametrize("kernel_rule, owned", [
    (rule(None, table=254, priority=9999, FRA_SUPPRESS_PREFIXLEN=0), MAIN_FIRST),
    (rule(None, table=254, priority=9999, FRA_SUPPRESS_PREFIXLEN=0, family=10),
     MAIN_FIRST._replace(src=ip_network("::/0"))),
    (rule(None, table=254, priority=9999, FRA_SUPPRESS_PREFIXLEN=0, protocol=None), None),
    (rule(None, table=254, priority=9999), None),  # no suppressor: a plain `lookup main`
    (rule(None, table=254, priority=9999, FRA_SUPPRESS_PREFIXLEN=8), None),
    (rule(None, table=10003, priority=9999, FRA_SUPPRESS_PREFIXLEN=0), None),
    (rule(None, table=254, priority=9999, FRA_SUPPRESS_PREFIXLEN=0, FRA_IIFNAME="docker0"),
     None),
    (rule(None, table=254, priority=9999, FRA_SUPPRESS_PREFIXLEN=0, FRA_FWMARK=1), None),
    (rule(None, table=254, priority=9999, FRA_SUPPRESS_PREFIXLEN=0, FRA_SUPPRESS_IFGROUP=1),
     None),
    (rule(None, table=254, priority=9999, FRA_SUPPRESS_PREFIXLEN=0, action=2), None),
    (rule(None, table=254, priority=9999, FRA_SUPPRESS_PREFIXLEN=0, dst="10.1.0.0",
          dst_len=16), None),
], ids=["marked", "IPv6", "unmarked", "no suppressor", "suppress_prefixlength 8",
        "another table", "iif", "fwmark", "suppress_ifgroup", "not lookup", "to a prefix"])
def test_the_one_from_all_rule_the_agent_owns(kernel_rule, owned):
    """`from all lookup main suppress_prefixlength 0` (main_table_first), and
    no other marked rule without a source."""
    observed = observe(rules=[kernel_rule])
    assert observed.rules == ({owned} if owned else set())
    assert (9999 in observed.foreign_rule_priorities) is (owned is None)


def test_foreign_rules_priorities_are_kept():
    """So Terway's rules (512, 2048) can be noticed."""
    observed = observe(rules=[rule("10.0.1.10"), rule(None, table=254, priority=512, protocol=None),
                              rule("10.0.5.5", table=3, priority=2048, protocol=None)])
    assert observed.foreign_rule_priorities == {512, 2048}


def test_addresses_with_marks():
    observed = observe(addresses=[address("10.0.1.10", protocol=PROTO),
                                  address("10.0.1.99", protocol=None),
                                  address("10.0.1.98", protocol=4)])
    assert observed.addresses == {Address(3, ip_address("10.0.1.10"), 24)}
    assert {str(a.ip) for a in observed.foreign_addresses} == {"10.0.1.99", "10.0.1.98"}


def test_links_are_read_with_their_mac_and_master():
    observed = observe()
    assert [(l.index, l.name, l.mac, l.up, l.master) for l in observed.links] == [
        (3, "eth1", "00:16:3e:00:01:01", True, None), (4, "eth2", "00:16:3e:00:02:01", True, None)]
    (enslaved,) = [link_record(m) for m in decoded(link(5, "eth3", master=9))]
    assert enslaved.master == 9


ROUTES = [route("10.0.1.0/24"), route("0.0.0.0/0", gateway="10.0.1.253")]


@pytest.mark.parametrize("addresses, rules, owned", [
    # the agent's rule for the address points at a table of its routes via that link
    ([address("10.0.1.10")], [rule("10.0.1.10")], {"10.0.1.10"}),
    # no rule of the agent's for it: someone else's (a user's hand-added address)
    ([address("10.0.1.99")], [rule("10.0.1.10")], set()),
    # a rule that is not the agent's proves nothing
    ([address("10.0.1.10")], [rule("10.0.1.10", protocol=4)], set()),
    # the right IP but on another link than the table's routes
    ([address("10.0.1.10", index=4)], [rule("10.0.1.10")], set()),
    # a marked address is the agent's anyway
    ([address("10.0.1.11", protocol=PROTO)], [], {"10.0.1.11"}),
], ids=["rule+routes", "no rule", "foreign rule", "other link", "marked"])
def test_without_marks_ownership_is_inferred_from_the_agents_rule(addresses, rules, owned):
    """Kernels before 5.18 drop an address's protocol (IFA_PROTO)."""
    observed = observe(addresses, ROUTES, rules, marks_addresses=False)
    assert {str(a.ip) for a in observed.addresses} == owned
    assert {str(a.ip) for a in observed.foreign_addresses} == (
        {m.get_attr("IFA_LOCAL") for m in addresses} - owned)


def test_with_marks_an_unmarked_address_is_never_the_agents():
    observed = observe([address("10.0.1.10")], ROUTES, [rule("10.0.1.10")])
    assert observed.addresses == frozenset()
    assert observed.foreign_addresses == {Address(3, ip_address("10.0.1.10"), 24)}


@pytest.mark.parametrize("release, marks", [("6.18.44-fc", True), ("5.18.0", True),
                                            ("5.17.15", False), ("4.19.91-27.al7.x86_64", False),
                                            ("3.10.0-1160.el7.x86_64", False)])
def test_kernel_version_decides(monkeypatch, release, marks):
    monkeypatch.delenv("ENI_AGENT_ADDRESS_MARKS", raising=False)
    monkeypatch.setattr("os.uname", lambda: type("U", (), {"release": release})())
    assert kernel_marks_addresses() is marks


@pytest.mark.parametrize("ours, pid1, release, initial", [
    (0xEFFFFFF9, None, "6.18.44", True),  # the fixed inode of recent kernels
    (4026532457, None, "6.18.44", False),  # PID 1 hidden, but the kernel has said no
    (4026531992, 4026531992, "6.1.0-13-cloud-amd64", True),  # older: as PID 1's
    (4026532457, 4026531992, "6.1.0-13-cloud-amd64", False),
    (4026531992, None, "5.10.0", True),  # older, PID 1 hidden: cannot tell, assume so
], ids=["fixed inode", "new kernel, other", "as PID 1", "not as PID 1", "cannot tell"])
def test_the_initial_network_namespace(monkeypatch, ours, pid1, release, initial):
    import os

    from eni_agent import host

    real_stat = os.stat

    def fake_stat(path, *args, **kwargs):
        if path == "/proc/self/ns/net":
            return os.stat_result((0, ours, 0, 0, 0, 0, 0, 0, 0, 0))
        if path == "/proc/1/ns/net":
            if pid1 is None:
                raise PermissionError(13, "Permission denied")
            return os.stat_result((0, pid1, 0, 0, 0, 0, 0, 0, 0, 0))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", fake_stat)
    monkeypatch.setattr("os.uname", lambda: type("U", (), {"release": release})())
    assert host.in_initial_netns() is initial
