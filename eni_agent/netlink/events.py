"""Netlink notifications, read into records and `Event`s: the records keep the
daemon's picture of the kernel current, the events say whether to reconcile."""

from __future__ import annotations

import socket
from typing import NamedTuple, Optional, Union

from pyroute2.netlink.rtnl import (RTM_DELADDR, RTM_DELLINK, RTM_DELROUTE, RTM_DELRULE,
                                   RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, RTM_NEWRULE,
                                   RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV4_RULE,
                                   RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE, RTMGRP_IPV6_RULE,
                                   RTMGRP_LINK)

from eni_agent.netlink.messages import (RT_SCOPE_LINK, RT_TABLE_LOCAL, address_record,
                                        link_record, route_record, rule_record)
from eni_agent.netlink.outcomes import Kind

GROUPS = (RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE
          | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE | RTMGRP_IPV6_RULE)
# message type -> (kind, deleted, record reader)
NOTIFICATIONS = {
    RTM_NEWLINK: (Kind.LINKS, False, link_record), RTM_DELLINK: (Kind.LINKS, True, link_record),
    RTM_NEWADDR: (Kind.ADDRESSES, False, address_record),
    RTM_DELADDR: (Kind.ADDRESSES, True, address_record),
    RTM_NEWROUTE: (Kind.ROUTES, False, route_record),
    RTM_DELROUTE: (Kind.ROUTES, True, route_record),
    RTM_NEWRULE: (Kind.RULES, False, rule_record), RTM_DELRULE: (Kind.RULES, True, rule_record),
}


class Event(NamedTuple):
    kind: Union[Kind, str]  # a Kind, or "overflow" (notifications were lost)
    index: Optional[int] = None  # link, address
    mac: Optional[str] = None  # link
    protocol: Optional[int] = None  # address, route, rule
    table: Optional[int] = None  # route, rule
    # link: `link_state()` of it, None when it is gone
    state: Optional[tuple] = None
    link_scope: bool = False  # address: link-local (fe80::, the kernel's own)
    link_kind: Optional[str] = None  # link: veth, bridge, ...; None for a NIC (a device behind it)
    port: int = 0  # the netlink port whose request caused it (0: the kernel's doing)


OVERFLOW = Event("overflow")


def link_state(link) -> tuple:
    """What the plan reads of a link (a record or a state.Link), to tell a
    notification that changes it from one that repeats it."""
    return (link.name, link.mac, link.up, link.master, link.promote_secondaries, link.mtu)


class Notification(NamedTuple):
    kind: Kind
    deleted: bool
    record: tuple
    replace: bool  # a route that replaced the one with its key
    event: Event


NLM_F_REPLACE = 0x100


def notification(msg) -> Optional[Notification]:
    """What a decoded pyroute2 notification says; None for what the agent
    never reads (the `local` table, a link's IPv6 protocol details)."""
    header = msg["header"]
    known = NOTIFICATIONS.get(header["type"])
    if known is None:
        return None
    kind, deleted, read = known
    if kind is Kind.LINKS and msg["family"] == socket.AF_INET6:
        return None  # IPv6 protocol state of a link (RA flags, tokens): never planned on
    record = read(msg)
    port = header["pid"]
    if kind is Kind.LINKS:
        event = Event(kind, index=record.index, mac=record.mac,
                      state=None if deleted else link_state(record), port=port,
                      link_kind=record.kind)
    elif kind is Kind.ADDRESSES:
        event = Event(kind, index=record.index, protocol=record.protocol,
                      link_scope=record.scope == RT_SCOPE_LINK, port=port)
    else:
        if kind is Kind.ROUTES and record.table == RT_TABLE_LOCAL:
            return None  # the kernel's own, two per address; reserved for it
        event = Event(kind, protocol=record.protocol, table=record.table, port=port)
    return Notification(kind, deleted, record, bool(header["flags"] & NLM_F_REPLACE), event)
