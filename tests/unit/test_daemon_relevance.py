"""Which netlink notifications make the daemon reconcile: anything that can
change the plan, and not the kernel's own housekeeping on the ENI's link."""

from __future__ import annotations

import socket
from typing import Optional

from eni_agent.model import parse_metadata
from eni_agent.relevance import EventFilter
from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWLINK

from eni_agent.netlink.events import OVERFLOW, notification

from tests.harness.documents import EXAMPLE_BYTES, SECOND_MAC
from tests.harness.netlink_messages import address, decoded, link

INDEX = 3
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253


def link_message(msg_type=RTM_NEWLINK, family=socket.AF_UNSPEC, up=True, name="eth1"):
    return [link(INDEX, name, SECOND_MAC, up=up, msg_type=msg_type, family=family)]


def address_message(scope: int, ip: str = "10.0.1.10", port: int = 0,
                    protocol: Optional[int] = None):
    return [(address(ip, 64 if ":" in ip else 24, INDEX, protocol, scope), port)]


def parse_events(messages) -> list:
    """Events as the daemon's netlink session reads them."""
    events = []
    for item in messages:
        msg, port = item if isinstance(item, tuple) else (item, 0)
        n = notification(decoded(msg, port=port)[0])
        if n is not None:
            events.append(n.event)
    return events


def daemon() -> EventFilter:
    d = EventFilter(protocol=234)
    d.know(parse_metadata(EXAMPLE_BYTES))
    d.managed_indexes = frozenset({INDEX})
    return d


def reasons(d: EventFilter, messages) -> list:
    return [d.reason(event) for event in parse_events(messages)]


def test_a_repeated_link_notification_is_ignored():
    d = daemon()
    assert reasons(d, link_message()) == ["link event"]
    # carrier, operstate, IPv6 DAD finishing: same name, MAC, flags, master
    assert reasons(d, link_message() + link_message()) == [None, None]


def test_a_link_change_the_plan_reads_is_relevant():
    d = daemon()
    reasons(d, link_message())
    assert reasons(d, link_message(up=False)) == ["link event"]
    assert reasons(d, link_message(up=False, name="ens5")) == ["link event"]


def test_a_link_going_away_is_always_relevant():
    d = daemon()
    reasons(d, link_message())
    assert reasons(d, link_message(RTM_DELLINK)) == ["link event"]
    assert reasons(d, link_message()) == ["link event"]  # and coming back


def test_ipv6_protocol_notifications_of_a_link_are_not_events():
    assert parse_events(link_message(family=socket.AF_INET6)) == []


def test_link_local_addresses_are_the_kernels():
    d = daemon()
    fe80 = "fe80::216:3eff:fe00:101"
    assert reasons(d, address_message(RT_SCOPE_LINK, fe80)) == [None]
    # someone's address (a VIP) to follow: not drift, never counted as a repair
    assert reasons(d, address_message(RT_SCOPE_UNIVERSE)) == ["foreign address event"]


def test_without_address_marks_an_unmarked_address_may_be_the_agents_own():
    d = daemon()
    d.kernel_marks_addresses = False  # Linux < 5.18
    assert reasons(d, address_message(RT_SCOPE_UNIVERSE)) == ["address event"]


def test_the_echo_of_the_daemons_own_change_is_not_news():
    d = daemon()
    d.own_port = 4242
    ours = address_message(RT_SCOPE_UNIVERSE, port=4242, protocol=234)
    someone_elses = address_message(RT_SCOPE_UNIVERSE, port=777, protocol=234)
    the_kernels = address_message(RT_SCOPE_UNIVERSE, port=0, protocol=234)
    assert reasons(d, ours + someone_elses + the_kernels) == [None, "address event",
                                                             "address event"]


def test_links_as_last_observed_are_not_news():
    from eni_agent.engine import Report
    from eni_agent.state import Link

    d = daemon()
    report = Report("sync")
    report.links = (Link(INDEX, "eth1", SECOND_MAC, True),)
    d.remember(report)
    assert reasons(d, link_message()) == [None]
    assert reasons(d, link_message(up=False)) == ["link event"]


def test_an_overflow_forgets_what_links_looked_like():
    d = daemon()
    reasons(d, link_message())
    assert d.reason(OVERFLOW) == "netlink events lost"
    assert reasons(d, link_message()) == ["link event"]


def test_nics_the_metadata_does_not_know_are_sorted_out():
    d = daemon()
    new = [link(7, "eth7", "00:16:3e:00:09:01")]
    gone = [link(8, "eth8", "00:16:3e:00:09:02", msg_type=RTM_DELLINK)]
    found = d.sort(parse_events(new + gone + link_message(up=False)))
    assert found.reasons == {"link event"}
    assert [e.mac for e in found.appeared] == ["00:16:3e:00:09:01"]
    assert found.gone == ("00:16:3e:00:09:02",)
