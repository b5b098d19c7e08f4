"""rtnetlink on the wire: the structs and attributes the agent sends and reads.

Only what eni-agent needs: link/address/route/rule dumps decoded into small
records, and the requests that change them. Numbers are from
include/uapi/linux/{netlink,rtnetlink,if_link,if_addr,fib_rules}.h.
"""

from __future__ import annotations

import socket
import struct
from collections import namedtuple
from functools import lru_cache
from ipaddress import ip_address

NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
RTA = struct.Struct("=HH")  # len, type
IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
FIBRULE = RTMSG  # family, dst_len, src_len, tos, table, res1, res2, action, flags
U32 = struct.Struct("=I")
I32 = struct.Struct("=i")

NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NETLINK_CAP_ACK = 10  # error ACKs without the original request
SOL_NETLINK = 270

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE = 32, 33, 34

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_AF_SPEC = 1, 3, 10, 26
IFLA_INET_CONF = 1
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS, IFA_PROTO = 1, 2, 8, 11
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_MULTIPATH, RTA_TABLE = 1, 4, 5, 9, 15
FRA_SRC, FRA_IIFNAME, FRA_PRIORITY, FRA_FWMARK, FRA_TABLE = 2, 3, 6, 10, 15
FRA_OIFNAME, FRA_PROTOCOL = 17, 21

IFF_UP = 0x1
IPV4_DEVCONF_PROMOTE_SECONDARIES = 20
RT_TABLE_COMPAT = 252  # rtm_table when the real id (> 255) is in RTA_TABLE
RT_TABLE_LOCAL = 255
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_NOWHERE = 0, 253, 255
RTN_UNICAST = 1
RTNH_F_ONLINK = 0x4
FR_ACT_TO_TBL = 1


SO_RCVBUFFORCE = 33


def open_socket(groups: int = 0, rcvbuf: int | None = None) -> socket.socket:
    """An rtnetlink socket, subscribed to `groups`; a large receive buffer
    (forced past rmem_max where CAP_NET_ADMIN allows) when asked."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                         socket.NETLINK_ROUTE)
    if rcvbuf:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((0, groups))
    return sock


# -- decoding -----------------------------------------------------------------


def messages(data: bytes):
    """(type, flags, seq, port, body) for each message in one datagram. `port`:
    for a notification, the netlink port of the request that caused it (0:
    the kernel's own doing)."""
    offset = 0
    while offset + NLMSG.size <= len(data):
        length, msg_type, flags, seq, port = NLMSG.unpack_from(data, offset)
        if length < NLMSG.size:
            return
        yield msg_type, flags, seq, port, data[offset + NLMSG.size: offset + length]
        offset += (length + 3) & ~3


def attrs(body: bytes, offset: int) -> dict[int, bytes]:
    found = {}
    while offset + RTA.size <= len(body):
        length, attr_type = RTA.unpack_from(body, offset)
        if length < RTA.size:
            break
        found[attr_type & 0x3FFF] = body[offset + RTA.size: offset + length]
        offset += (length + 3) & ~3
    return found


@lru_cache(maxsize=8192)
def _ip_from(raw: bytes):
    return ip_address(raw)  # immutable: one object per address, however often dumped


def _ip(family: int, raw: bytes | None):
    return _ip_from(raw) if raw else None


def _u32(raw: bytes | None) -> int | None:
    return U32.unpack_from(raw)[0] if raw and len(raw) >= 4 else None


# Decoded dump records: plain named tuples (thousands are made per dump).
LinkRecord = namedtuple("LinkRecord", "index name mac up master promote_secondaries")
# scope: RT_SCOPE_LINK for link-local addresses (fe80::, the kernel's own)
AddressRecord = namedtuple("AddressRecord", "index ip prefixlen protocol scope",
                           defaults=(RT_SCOPE_UNIVERSE,))
# dst None: the default route; oif None: no RTA_OIF (multipath, blackhole)
RouteRecord = namedtuple("RouteRecord", "family table protocol type dst_len dst gateway oif "
                                        "multipath")
# selectors: iif/oif/fwmark, so not a rule of the agent's shape
RuleRecord = namedtuple("RuleRecord", "family table protocol priority src src_len dst_len action "
                                      "selectors")


def decode_link(body: bytes) -> LinkRecord:
    _family, _type, index, flags, _change = IFINFO.unpack_from(body)
    a = attrs(body, IFINFO.size)
    mac = a.get(IFLA_ADDRESS)
    promote = True
    spec = a.get(IFLA_AF_SPEC)
    if spec:
        inet = attrs(spec, 0).get(socket.AF_INET)
        conf = attrs(inet, 0).get(IFLA_INET_CONF) if inet else None
        at = (IPV4_DEVCONF_PROMOTE_SECONDARIES - 1) * 4
        if conf and len(conf) >= at + 4:
            promote = bool(U32.unpack_from(conf, at)[0])
    name = a.get(IFLA_IFNAME, b"").rstrip(b"\0").decode("utf-8", "replace")
    return LinkRecord(index, name or f"#{index}", mac.hex(":") if mac and len(mac) == 6 else None,
                      bool(flags & IFF_UP), _u32(a.get(IFLA_MASTER)) or None, promote)


def decode_address(body: bytes) -> AddressRecord:
    family, prefixlen, _flags, scope, index = IFADDR.unpack_from(body)
    a = attrs(body, IFADDR.size)
    proto = a.get(IFA_PROTO)
    return AddressRecord(index, _ip(family, a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)), prefixlen,
                         proto[0] if proto else None, scope)


def in_local_table(body: bytes) -> bool:
    """True for a route in the `local` table, read off the header alone: the
    kernel keeps two there per address, none is ever the agent's, and the
    table is reserved, so observing skips them without decoding."""
    return len(body) > 4 and body[4] == RT_TABLE_LOCAL


def decode_route(body: bytes) -> RouteRecord:
    family, dst_len, _src_len, _tos, table, protocol, _scope, rtype, _flags = RTMSG.unpack_from(body)
    a = attrs(body, RTMSG.size)
    return RouteRecord(family, _u32(a.get(RTA_TABLE)) or table, protocol, rtype, dst_len,
                       _ip(family, a.get(RTA_DST)), _ip(family, a.get(RTA_GATEWAY)),
                       _u32(a.get(RTA_OIF)), RTA_MULTIPATH in a)


def decode_rule(body: bytes) -> RuleRecord:
    family, dst_len, src_len, _tos, table, _r1, _r2, action, _flags = FIBRULE.unpack_from(body)
    a = attrs(body, FIBRULE.size)
    proto = a.get(FRA_PROTOCOL)
    return RuleRecord(family, _u32(a.get(FRA_TABLE)) or table, proto[0] if proto else None,
                      _u32(a.get(FRA_PRIORITY)) or 0, _ip(family, a.get(FRA_SRC)), src_len,
                      dst_len, action,
                      any(k in a for k in (FRA_IIFNAME, FRA_OIFNAME, FRA_FWMARK)))


# -- encoding -----------------------------------------------------------------


def nla(attr_type: int, data: bytes) -> bytes:
    length = RTA.size + len(data)
    return RTA.pack(length, attr_type) + data + b"\0" * ((4 - length % 4) % 4)


def message(msg_type: int, flags: int, seq: int, payload: bytes) -> bytes:
    return NLMSG.pack(NLMSG.size + len(payload), msg_type, flags, seq, 0) + payload


def barrier(seq: int) -> bytes:
    """A no-op the kernel only acknowledges: sent after a batch of requests
    that are acknowledged only if they fail, its ACK says the batch is done
    (the kernel handles one send's messages in order before returning)."""
    return message(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, seq, b"")


def dump_request(msg_type: int, family: int, seq: int) -> bytes:
    header = IFINFO.pack(family, 0, 0, 0, 0) if msg_type == RTM_GETLINK else RTMSG.pack(
        family, 0, 0, 0, 0, 0, 0, 0, 0)
    return message(msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, header)


def link_up(index: int) -> tuple[int, int, bytes]:
    return RTM_NEWLINK, 0, IFINFO.pack(socket.AF_UNSPEC, 0, index, IFF_UP, IFF_UP)


def set_ipv4_devconf(index: int, key: int, value: int) -> tuple[int, int, bytes]:
    """net.ipv4.conf.<link>.<key> = value, as a netlink request (no /proc/sys)."""
    conf = nla(key, U32.pack(value))
    return RTM_SETLINK, 0, IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0) + nla(
        IFLA_AF_SPEC, nla(socket.AF_INET, nla(IFLA_INET_CONF, conf)))


def address(add: bool, index: int, ip, prefixlen: int, protocol: int | None,
            flags: int = 0) -> tuple[int, int, bytes]:
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    packed = ip.packed
    payload = IFADDR.pack(family, prefixlen, flags & 0xFF, RT_SCOPE_UNIVERSE, index)
    payload += nla(IFA_LOCAL, packed) + nla(IFA_ADDRESS, packed)
    if add:
        payload += nla(IFA_FLAGS, U32.pack(flags))
        if protocol is not None:
            payload += nla(IFA_PROTO, bytes([protocol]))
        return RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, payload
    return RTM_DELADDR, 0, payload


def route(verb: str, table: int, dst, oif: int, gateway, protocol: int) -> tuple[int, int, bytes]:
    """verb: add | replace | del. `dst` an ip_network; `gateway` None for on-link."""
    family = socket.AF_INET if dst.version == 4 else socket.AF_INET6
    if verb == "del":
        scope, rtype, rflags = RT_SCOPE_NOWHERE, 0, 0
    else:
        on_link = gateway is None and family == socket.AF_INET  # IPv6 routes have no scopes
        scope = RT_SCOPE_LINK if on_link else RT_SCOPE_UNIVERSE
        rtype, rflags = RTN_UNICAST, (RTNH_F_ONLINK if gateway is not None else 0)
    compat = table if table < 256 else RT_TABLE_COMPAT
    payload = RTMSG.pack(family, dst.prefixlen, 0, 0, compat, protocol, scope, rtype, rflags)
    payload += nla(RTA_TABLE, U32.pack(table))
    if dst.prefixlen:
        payload += nla(RTA_DST, dst.network_address.packed)
    if gateway is not None:
        payload += nla(RTA_GATEWAY, gateway.packed)
    payload += nla(RTA_OIF, U32.pack(oif))
    if verb == "del":
        return RTM_DELROUTE, 0, payload
    flags = NLM_F_CREATE | (NLM_F_REPLACE if verb == "replace" else NLM_F_EXCL)
    return RTM_NEWROUTE, flags, payload


def rule(add: bool, priority: int, src, table: int, protocol: int) -> tuple[int, int, bytes]:
    family = socket.AF_INET if src.version == 4 else socket.AF_INET6
    compat = table if table < 256 else 0
    payload = FIBRULE.pack(family, 0, src.prefixlen, 0, compat, 0, 0, FR_ACT_TO_TBL, 0)
    payload += (nla(FRA_SRC, src.network_address.packed) + nla(FRA_PRIORITY, U32.pack(priority))
                + nla(FRA_TABLE, U32.pack(table)) + nla(FRA_PROTOCOL, bytes([protocol])))
    if add:
        return RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, payload
    return RTM_DELRULE, 0, payload
