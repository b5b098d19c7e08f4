"""pyroute2's rtnetlink marshal, taught to skip routes the agent never reads.

A host with a BGP speaker or a large VPN holds 100,000 routes in `main`; the
kernel cannot leave them out of a dump that must still show main's default
routes (no dst_len filter), nor out of the notifications. Decoding each one
in pyroute2 costs ~20 us and a record kept for it ~3 KB, so the parser
pyroute2 picks for a route message first reads the rtmsg header's fixed
bytes and drops, undecoded, a route that is:
  not marked with the agent's protocol, and
  in `local` (the kernel's own, two per address), or in `main` with a prefix
  (dst_len > 0).
What stays: every marked route; every route of any other table (any of them
can be an ENI's table: a foreign route there is a conflict); main's default
routes (a DHCP client or network manager on an ENI). A route in `main` may
matter for where a reply goes, but only through a rule that sends the lookup
there before the ENI's rule: the verification asks the kernel that question
directly (`eni_agent.verify`).

Sequence numbers registered in `whole` are decoded in full (route lookups,
whose answers come from any table); those in `counted` are counted and never
decoded (the local table's routes of a link, by count).
"""

from __future__ import annotations

import struct
from typing import Dict, Set

from pyroute2.netlink.rtnl import RTM_DELROUTE, RTM_NEWROUTE
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

RT_TABLE_MAIN, RT_TABLE_LOCAL = 254, 255
NLMSG_HEADER = 16
# struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type
RTMSG = struct.Struct("BBBBBBBB")
_ROUTES = frozenset({RTM_NEWROUTE, RTM_DELROUTE})


class RouteFilter(MarshalRtnl):
    def __init__(self, protocol: int):
        super().__init__()
        self.protocol = protocol
        self.whole: Set[int] = set()
        self.counted: Dict[int, int] = {}
        # Local-table routes seen go by undecoded, but their coming and going
        # can defeat the agent's addresses: the verification re-asks after one.
        self.local_changes = 0

    def get_parser(self, key, flags, sequence_number):
        if key not in _ROUTES or sequence_number in self.whole:
            return super().get_parser(key, flags, sequence_number)
        if sequence_number in self.counted:
            return self._count
        return self._route

    def _count(self, data, offset, length):
        sequence_number = struct.unpack_from("I", data, offset + 8)[0]
        self.counted[sequence_number] += 1

    def _route(self, data, offset, length):
        _, dst_len, _, _, table, protocol, _, _ = RTMSG.unpack_from(data, offset + NLMSG_HEADER)
        if protocol != self.protocol:
            if table == RT_TABLE_LOCAL:
                self.local_changes += 1
                return None
            if table == RT_TABLE_MAIN and dst_len:
                return None
        key, flags, sequence_number = struct.unpack_from("HHI", data, offset + 4)
        return self.parse_one_message(key, flags, sequence_number, data, offset, length)
