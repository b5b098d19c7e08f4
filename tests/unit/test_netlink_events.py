"""Notifications as pyroute2 decodes them: what the daemon learns from each
(`Event`) and how each keeps the records of the kernel current."""

from __future__ import annotations

import socket

import pytest
from pyroute2.netlink.rtnl import (RTM_DELADDR, RTM_DELLINK, RTM_DELROUTE, RTM_DELRULE,
                                   RTM_NEWROUTE)

from eni_agent.netlink.cache import Records
from eni_agent.netlink.events import Event, notification
from eni_agent.netlink.messages import address_record, link_record, route_record, rule_record
from eni_agent.netlink.outcomes import Kind

from tests.harness.netlink_messages import address, decoded, link, route, rule


def notes(*messages, port=0):
    return [notification(m) for m in decoded(*messages, port=port)]


@pytest.mark.parametrize("message, event", [
    (link(), Event(Kind.LINKS, index=3, mac="00:16:3e:00:01:01",
                   state=("eth1", "00:16:3e:00:01:01", True, None, True, 0))),
    (link(msg_type=RTM_DELLINK), Event(Kind.LINKS, index=3, mac="00:16:3e:00:01:01")),
    (address(protocol=234), Event(Kind.ADDRESSES, index=3, protocol=234)),
    (address("fe80::216:3eff:fe00:101", 64, scope=253),
     Event(Kind.ADDRESSES, index=3, link_scope=True)),
    (route(), Event(Kind.ROUTES, protocol=234, table=10003)),
    (rule(msg_type=RTM_DELRULE), Event(Kind.RULES, protocol=234, table=10003)),
], ids=["link", "link gone", "address", "link-local address", "route", "rule removed"])
def test_what_a_notification_says(message, event):
    (n,) = notes(message)
    assert n.event == event


def test_the_port_of_the_request_that_caused_it_is_kept():
    (n,) = notes(rule(), port=4242)
    assert n.event.port == 4242


@pytest.mark.parametrize("message", [
    link(family=socket.AF_INET6),  # a link's IPv6 protocol state (RA flags, tokens)
    route("10.0.1.10/32", table=255, protocol=2, rtype=2),  # the local table
], ids=["IPv6 link details", "local table"])
def test_what_is_never_read(message):
    assert notes(message) == [None]


def loaded() -> Records:
    records = Records()
    records.load("links", [link_record(m) for m in decoded(link(), link(4, "eth2", up=True))])
    records.load("addresses", [address_record(m) for m in decoded(
        address("10.0.1.10", protocol=234), address("10.0.1.11", protocol=234))])
    records.load("routes", [route_record(m) for m in decoded(
        route(), route("0.0.0.0/0", gateway="10.0.1.253"))])
    records.load("rules", [rule_record(m) for m in decoded(rule("10.0.1.10"), rule("10.0.1.11"))])
    return records


def test_a_removed_rule_leaves_the_records():
    records = loaded()
    for n in notes(rule("10.0.1.11", msg_type=RTM_DELRULE)):
        records.note(n)
    assert [str(r.src) for r in records.values("rules")] == ["10.0.1.10"]
    assert not records.stale_links


def test_a_new_rule_joins_them_once():
    records = loaded()
    for n in notes(rule("10.0.1.12"), rule("10.0.1.12")):
        records.note(n)
    assert sorted(str(r.src) for r in records.values("rules")) == [
        "10.0.1.10", "10.0.1.11", "10.0.1.12"]


def test_a_replacing_route_takes_the_place_of_the_old():
    records = loaded()
    for n in notes(route("0.0.0.0/0", gateway="10.0.1.254", flags=0x100)):  # NLM_F_REPLACE
        records.note(n)
    defaults = [r for r in records.values("routes") if r.dst_len == 0]
    assert [str(r.gateway) for r in defaults] == ["10.0.1.254"]


def test_a_removed_route_leaves_the_records():
    records = loaded()
    for n in notes(route(msg_type=RTM_DELROUTE)):
        records.note(n)
    assert [r.dst_len for r in records.values("routes")] == [0]


@pytest.mark.parametrize("messages, stale", [
    ([link(up=False)], {3}),  # down: the kernel flushes its IPv4 routes silently
    ([link(msg_type=RTM_DELLINK)], {3}),
    ([link()], set()),  # a repeat changes nothing
    ([address("10.0.1.11", msg_type=RTM_DELADDR)], set()),  # 10.0.1.10 still there
    ([address("10.0.1.11", msg_type=RTM_DELADDR),
      address("10.0.1.10", msg_type=RTM_DELADDR)], {3}),  # the last IPv4 address
    ([route("10.0.1.0/24", msg_type=RTM_NEWROUTE)], set()),
], ids=["link down", "link gone", "link repeated", "one address", "last address", "route"])
def test_silent_kernel_work_marks_the_link_to_read_again(messages, stale):
    records = loaded()
    for n in notes(*messages):
        records.note(n)
    assert records.stale_links == stale


def test_reading_a_link_again_replaces_its_addresses_and_routes_only():
    records = loaded()
    records.stale_links.add(3)
    fresh = [address_record(m) for m in decoded(address("10.0.1.10", protocol=234))]
    records.load_link(3, fresh, [])
    assert [str(a.ip) for a in records.values("addresses")] == ["10.0.1.10"]
    assert list(records.values("routes")) == []
    assert len(list(records.values("rules"))) == 2
    assert not records.stale_links
