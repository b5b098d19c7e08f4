"""Netlink notifications, decoded just enough to decide whether to reconcile."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from eni_agent.netlink import wire

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV4_RULE = 0x80
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
RTMGRP_IPV6_RULE = 1 << (19 - 1)  # RTNLGRP_IPV6_RULE
GROUPS = (RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE
          | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE | RTMGRP_IPV6_RULE)
_KINDS = {wire.RTM_NEWLINK: "link", wire.RTM_DELLINK: "link", wire.RTM_NEWADDR: "address",
          wire.RTM_DELADDR: "address", wire.RTM_NEWROUTE: "route", wire.RTM_DELROUTE: "route",
          wire.RTM_NEWRULE: "rule", wire.RTM_DELRULE: "rule"}


@dataclass(frozen=True)
class Event:
    kind: str  # link | address | route | rule | overflow
    index: int | None = None  # link, address
    mac: str | None = None  # link
    protocol: int | None = None  # address, route, rule
    table: int | None = None  # route, rule
    # link: `link_state()` of it, None when it is gone
    state: tuple | None = None
    link_scope: bool = False  # address: link-local (fe80::, the kernel's own)
    port: int = 0  # the netlink port whose request caused it (0: the kernel's doing)


def link_state(link) -> tuple:
    """What the plan reads of a link (a dump record or a state.Link), to tell
    a notification that changes it from one that repeats it."""
    return (link.name, link.mac, link.up, link.master, link.promote_secondaries)


class EventSocket:
    """A raw rtnetlink socket subscribed to link, address, route and rule
    notifications of both families; `drain()` never blocks. Decoding only
    what decides relevance keeps an unrelated burst (containers churning
    veths) cheap."""

    def __init__(self, rcvbuf: int = 4 << 20):
        self.sock = wire.open_socket(GROUPS, rcvbuf)
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def drain(self) -> list[Event]:
        """All pending events. An overflowed socket (ENOBUFS: events were lost)
        yields an `overflow` event: the caller must resync fully."""
        events: list[Event] = []
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return events
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    events.append(Event("overflow"))
                    continue
                raise
            events.extend(parse_events(data))


def parse_events(data: bytes) -> list[Event]:
    events = []
    for msg_type, _flags, _seq, port, body in wire.messages(data):
        kind = _KINDS.get(msg_type)
        try:
            if msg_type == wire.NLMSG_OVERRUN:
                events.append(Event("overflow"))
            elif kind == "link":
                if body[0] == socket.AF_INET6:
                    continue  # IPv6 protocol state of a link (RA flags, tokens): never planned on
                link = wire.decode_link(body)
                state = None if msg_type == wire.RTM_DELLINK else link_state(link)
                events.append(Event(kind, index=link.index, mac=link.mac, state=state, port=port))
            elif kind == "address":
                a = wire.decode_address(body)
                events.append(Event(kind, index=a.index, protocol=a.protocol,
                                    link_scope=a.scope == wire.RT_SCOPE_LINK, port=port))
            elif kind == "route":
                r = wire.decode_route(body)
                events.append(Event(kind, protocol=r.protocol, table=r.table, port=port))
            elif kind == "rule":
                r = wire.decode_rule(body)
                events.append(Event(kind, protocol=r.protocol, table=r.table, port=port))
        except (ValueError, IndexError):  # struct.error is a ValueError: a short message
            events.append(Event("overflow"))  # cannot tell what changed: resync
    return events
