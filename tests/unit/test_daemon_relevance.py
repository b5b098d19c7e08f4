"""Which netlink notifications make the daemon reconcile: anything that can
change the plan, and not the kernel's own housekeeping on the ENI's link."""

from __future__ import annotations

import socket

from eni_agent.config import Config
from eni_agent.daemon import Daemon
from eni_agent.model import parse_metadata
from eni_agent.netlink import wire
from eni_agent.netlink.events import parse_events

from ._helpers import EXAMPLE_BYTES, SECOND_MAC

INDEX = 3


def link_message(msg_type=wire.RTM_NEWLINK, family=socket.AF_UNSPEC, up=True, name=b"eth1"):
    body = wire.IFINFO.pack(family, 0, INDEX, wire.IFF_UP if up else 0, 0)
    body += wire.nla(wire.IFLA_IFNAME, name + b"\0")
    body += wire.nla(wire.IFLA_ADDRESS, bytes.fromhex(SECOND_MAC.replace(":", "")))
    return wire.message(msg_type, 0, 0, body)


def address_message(scope: int, ip: bytes = bytes([10, 0, 1, 10]), family=socket.AF_INET,
                    port: int = 0, protocol: int | None = None):
    body = wire.IFADDR.pack(family, 24, 0, scope, INDEX)
    body += wire.nla(wire.IFA_LOCAL, ip) + wire.nla(wire.IFA_ADDRESS, ip)
    if protocol is not None:
        body += wire.nla(wire.IFA_PROTO, bytes([protocol]))
    return wire.NLMSG.pack(wire.NLMSG.size + len(body), wire.RTM_NEWADDR, 0, 0, port) + body


def daemon() -> Daemon:
    d = Daemon(Config())
    d.metadata = parse_metadata(EXAMPLE_BYTES)
    d.managed_indexes = {INDEX}
    return d


def reasons(d: Daemon, data: bytes) -> list:
    return [d._relevance(event) for event in parse_events(data)]


def test_a_repeated_link_notification_is_ignored():
    d = daemon()
    assert reasons(d, link_message()) == ["link event"]
    # carrier, operstate, IPv6 DAD finishing: same name, MAC, flags, master
    assert reasons(d, link_message() + link_message()) == [None, None]


def test_a_link_change_the_plan_reads_is_relevant():
    d = daemon()
    reasons(d, link_message())
    assert reasons(d, link_message(up=False)) == ["link event"]
    assert reasons(d, link_message(up=False, name=b"ens5")) == ["link event"]


def test_a_link_going_away_is_always_relevant():
    d = daemon()
    reasons(d, link_message())
    assert reasons(d, link_message(wire.RTM_DELLINK)) == ["link event"]
    assert reasons(d, link_message()) == ["link event"]  # and coming back


def test_ipv6_protocol_notifications_of_a_link_are_not_events():
    assert parse_events(link_message(family=socket.AF_INET6)) == []


def test_link_local_addresses_are_the_kernels():
    d = daemon()
    fe80 = bytes.fromhex("fe800000000000000216 3eff fe000101".replace(" ", ""))
    assert reasons(d, address_message(wire.RT_SCOPE_LINK, fe80, socket.AF_INET6)) == [None]
    assert reasons(d, address_message(wire.RT_SCOPE_UNIVERSE)) == ["address event"]


class _Session:
    port = 4242


def test_the_echo_of_the_daemons_own_change_is_not_news():
    d = daemon()
    d.nl = _Session()
    ours = address_message(wire.RT_SCOPE_UNIVERSE, port=4242, protocol=234)
    someone_elses = address_message(wire.RT_SCOPE_UNIVERSE, port=777, protocol=234)
    the_kernels = address_message(wire.RT_SCOPE_UNIVERSE, port=0, protocol=234)
    assert reasons(d, ours + someone_elses + the_kernels) == [None, "address event",
                                                             "address event"]


def test_links_as_last_observed_are_not_news():
    from eni_agent.engine import Report
    from eni_agent.state import Link

    d = daemon()
    report = Report("sync")
    report.links = (Link(INDEX, "eth1", SECOND_MAC, True),)
    d._remember(report)
    assert reasons(d, link_message()) == [None]
    assert reasons(d, link_message(up=False)) == ["link event"]


def test_an_overflow_forgets_what_links_looked_like():
    d = daemon()
    reasons(d, link_message())
    assert reasons(d, wire.message(wire.NLMSG_OVERRUN, 0, 0, b"")) == ["netlink events lost"]
    assert reasons(d, link_message()) == ["link event"]
