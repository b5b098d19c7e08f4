"""The one adapter that owns pyroute2: kernel state in, changes out.

Nothing else imports pyroute2 (importing it costs ~200 ms, so callers import
this module lazily). Netlink error codes are turned into meanings here:
already present (EEXIST), already gone (ESRCH for routes, ENOENT for rules,
EADDRNOTAVAIL for addresses), link gone (ENODEV).
"""

from __future__ import annotations

import enum
import errno
import glob
import os
import socket
import struct
from dataclasses import dataclass
from ipaddress import ip_address, ip_network

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from eni_agent.errors import PermissionDenied
from eni_agent.plan import Action, Change
from eni_agent.state import Address, Link, Observed, Route, Rule

IFF_UP = 0x1
IFA_F_NOPREFIXROUTE = 0x200  # the ENI subnet goes only into the ENI's own table
# The cloud allocated the address: duplicate address detection can only delay
# it (a tentative IPv6 address cannot be a source for ~1 s), never catch a clash.
IFA_F_NODAD = 0x2
FAMILIES = (socket.AF_INET, socket.AF_INET6)
RTNH_F_ONLINK = 0x4
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_NOWHERE = 255  # in a delete request: match any scope
RTN_UNICAST = 1
FR_ACT_TO_TBL = 1
MAIN_TABLE = 254
RT_TABLES_FILES = ("/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables")
RT_TABLES_DIRS = ("/etc/iproute2/rt_tables.d", "/usr/share/iproute2/rt_tables.d")

# Raw netlink, for what pyroute2 cannot encode and for cheap event parsing.
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV4_RULE = 0x80
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
RTMGRP_IPV6_RULE = 1 << (19 - 1)  # RTNLGRP_IPV6_RULE
_NLMSG = struct.Struct("=IHHII")
_RTA = struct.Struct("=HH")
_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
_KINDS = {16: "link", 17: "link", 20: "address", 21: "address", 24: "route", 25: "route",
          32: "rule", 33: "rule"}
IFLA_ADDRESS, IFA_PROTO, RTA_TABLE, FRA_TABLE, FRA_PROTOCOL = 1, 11, 15, 15, 21
NLMSG_OVERRUN = 4
NLMSG_ERROR = 2
RTM_SETLINK = 19
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
IFLA_AF_SPEC, IFLA_INET_CONF = 26, 1
IPV4_DEVCONF_PROMOTE_SECONDARIES = 20


class Outcome(enum.StrEnum):
    DONE = "done"
    ALREADY = "already"  # present already (add) or gone already (remove)
    LINK_GONE = "link-gone"
    FAILED = "failed"


@dataclass(frozen=True)
class Result:
    change: Change
    outcome: Outcome
    error: str = ""


class Netlink:
    """A netlink session in the current network namespace."""

    def __init__(self, protocol: int):
        self.protocol = protocol
        self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- observe -----------------------------------------------------------

    def observe(self) -> Observed:
        links = tuple(sorted(_link(msg) for msg in self.ipr.link("dump") if _has_mac(msg)))
        owned_addresses, foreign_addresses = set(), set()
        owned_routes, foreign_tables, foreign_default_oifs = set(), set(), set()
        owned_rules = set()
        for family in FAMILIES:
            for msg in self.ipr.addr("dump", family=family):
                address = _address(msg)
                if msg.get("IFA_PROTO") == self.protocol:
                    owned_addresses.add(address)
                else:
                    foreign_addresses.add(address)
            for msg in self.ipr.route("dump", family=family):
                table = msg.get("RTA_TABLE") or msg["table"]
                route = _route(msg) if msg["proto"] == self.protocol else None
                if route is not None:
                    owned_routes.add(route)
                else:
                    foreign_tables.add(table)
                    if table == MAIN_TABLE and msg["dst_len"] == 0 and msg.get("RTA_OIF"):
                        foreign_default_oifs.add(msg.get("RTA_OIF"))
            for msg in self.ipr.rule("dump", family=family):
                rule = _rule(msg) if msg.get("FRA_PROTOCOL") == self.protocol else None
                if rule is not None:
                    owned_rules.add(rule)
                else:
                    foreign_tables.add(msg.get("FRA_TABLE") or msg["table"])
        return Observed(
            links=links,
            addresses=frozenset(owned_addresses),
            routes=frozenset(owned_routes),
            rules=frozenset(owned_rules),
            foreign_addresses=frozenset(foreign_addresses),
            foreign_tables=frozenset(foreign_tables),
            named_tables=frozenset(named_tables()),
            foreign_default_oifs=frozenset(foreign_default_oifs),
        )

    # -- apply -------------------------------------------------------------

    def apply(self, changes: list[Change]) -> list[Result]:
        """Apply changes in order; one failing change does not stop the rest,
        except that a link found gone skips the remaining changes on it."""
        results = []
        gone: set[int] = set()
        for change in changes:
            if change.ifindex in gone:
                results.append(Result(change, Outcome.LINK_GONE))
                continue
            result = self._apply_one(change)
            if result.outcome is Outcome.LINK_GONE and change.ifindex is not None:
                gone.add(change.ifindex)
            results.append(result)
        return results

    def _apply_one(self, change: Change) -> Result:
        target = change.target
        if change.action is Action.KEEP_SECONDARIES:
            return self._promote_secondaries(change)
        if isinstance(target, Link):
            call, absent = (lambda: self.ipr.link("set", index=target.index, state="up")), ()
        elif isinstance(target, Address):
            call, absent = self._address_call(change.action, target), (errno.EADDRNOTAVAIL,)
        elif isinstance(target, Route):
            call, absent = self._route_call(change.action, target), (errno.ESRCH,)
        else:
            call, absent = self._rule_call(change.action, target), (errno.ENOENT,)
        try:
            call()
        except NetlinkError as e:
            if e.code == errno.EPERM:
                raise PermissionDenied(
                    "permission denied changing the network: run as root (CAP_NET_ADMIN)"
                ) from None
            if e.code == errno.ENODEV:
                return Result(change, Outcome.LINK_GONE)
            if change.action is Action.REMOVE and e.code in absent:
                return Result(change, Outcome.ALREADY)
            if change.action is Action.ADD and e.code == errno.EEXIST:
                return Result(change, Outcome.ALREADY)
            return Result(change, Outcome.FAILED, _strerror(e.code))
        return Result(change, Outcome.DONE)

    def _promote_secondaries(self, change: Change) -> Result:
        try:
            set_ipv4_devconf(change.target.index, IPV4_DEVCONF_PROMOTE_SECONDARIES, 1)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return Result(change, Outcome.LINK_GONE)
            if e.errno == errno.EPERM:
                raise PermissionDenied(
                    "permission denied changing the network: run as root (CAP_NET_ADMIN)"
                ) from None
            return Result(change, Outcome.FAILED, _strerror(e.errno or 0))
        return Result(change, Outcome.DONE)

    def _address_call(self, action: Action, a: Address):
        if action is Action.REMOVE:
            return lambda: self.ipr.addr("del", index=a.index, address=str(a.ip),
                                         prefixlen=a.prefixlen)
        flags = IFA_F_NOPREFIXROUTE | (IFA_F_NODAD if a.version == 6 else 0)
        return lambda: self.ipr.addr("add", index=a.index, address=str(a.ip),
                                     prefixlen=a.prefixlen, proto=self.protocol, flags=flags)

    def _route_call(self, action: Action, r: Route):
        spec = dict(table=r.table, dst=str(r.dst.network_address), dst_len=r.dst.prefixlen,
                    oif=r.oif, proto=self.protocol, family=_family(r.version))
        if r.gateway is not None:
            spec["gateway"] = str(r.gateway)
        if action is Action.REMOVE:
            return lambda: self.ipr.route("del", scope=RT_SCOPE_NOWHERE, **spec)
        link_scope = r.gateway is None and r.version == 4  # IPv6 routes have no scopes
        spec.update(type=RTN_UNICAST, scope=RT_SCOPE_LINK if link_scope else RT_SCOPE_UNIVERSE)
        if r.gateway is not None:
            # onlink: the gateway needs no route of its own to be accepted, so
            # the default route survives the subnet route being removed.
            spec["flags"] = RTNH_F_ONLINK
        verb = "replace" if action is Action.REPLACE else "add"
        return lambda: self.ipr.route(verb, **spec)

    def _rule_call(self, action: Action, r: Rule):
        verb = "del" if action is Action.REMOVE else "add"
        return lambda: self.ipr.rule(verb, family=_family(r.version), priority=r.priority,
                                     src=str(r.src), src_len=r.src.max_prefixlen, table=r.table,
                                     protocol=self.protocol, action=FR_ACT_TO_TBL)


def set_ipv4_devconf(index: int, key: int, value: int) -> None:
    """RTM_SETLINK with IFLA_AF_SPEC/AF_INET/IFLA_INET_CONF/{key: value}.

    The netlink way to set net.ipv4.conf.<link>.<key> (no /proc/sys write, so
    it works under systemd's ProtectKernelTunables=). pyroute2 decodes this
    attribute as a flat struct and cannot encode it, hence the raw request.
    """
    conf = _nla(key, struct.pack("=I", value))
    payload = _IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0) + _nla(
        IFLA_AF_SPEC, _nla(socket.AF_INET, _nla(IFLA_INET_CONF, conf)))
    header = _NLMSG.pack(_NLMSG.size + len(payload), RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                       socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        sock.send(header + payload)
        reply = sock.recv(4096)
    _length, msg_type, _flags, _seq, _pid = _NLMSG.unpack_from(reply)
    if msg_type == NLMSG_ERROR:
        (code,) = struct.unpack_from("=i", reply, _NLMSG.size)
        if code:
            raise OSError(-code, os.strerror(-code))


def _nla(attr_type: int, data: bytes) -> bytes:
    length = _RTA.size + len(data)
    return _RTA.pack(length, attr_type) + data + b"\0" * ((4 - length % 4) % 4)


# -- message decoding ------------------------------------------------------


def _has_mac(msg) -> bool:
    mac = msg.get("IFLA_ADDRESS")
    return bool(mac) and len(mac) == 17 and mac != "00:00:00:00:00:00"


def _link(msg) -> Link:
    af_spec = msg.get("IFLA_AF_SPEC")
    inet = af_spec.get_attr("AF_INET") if af_spec else None
    return Link(
        index=msg["index"],
        name=msg.get("IFLA_IFNAME") or f"#{msg['index']}",
        mac=msg.get("IFLA_ADDRESS").lower(),
        up=bool(msg["flags"] & IFF_UP),
        master=msg.get("IFLA_MASTER") or None,
        promote_secondaries=bool(inet["promote_secondaries"]) if inet else True,
    )


def _family(version: int) -> int:
    return socket.AF_INET if version == 4 else socket.AF_INET6


def _address(msg) -> Address:
    ip = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
    return Address(msg["index"], ip_address(ip), msg["prefixlen"])


def _route(msg) -> Route | None:
    """An owned route, if it has the one shape the agent creates."""
    if msg["type"] != RTN_UNICAST or msg.get("RTA_MULTIPATH") or msg.get("RTA_OIF") is None:
        return None
    unspecified = "::" if msg["family"] == socket.AF_INET6 else "0.0.0.0"
    dst = ip_network(f"{msg.get('RTA_DST') or unspecified}/{msg['dst_len']}", strict=False)
    gateway = msg.get("RTA_GATEWAY")
    return Route(
        table=msg.get("RTA_TABLE") or msg["table"],
        dst=dst,
        oif=msg.get("RTA_OIF"),
        gateway=ip_address(gateway) if gateway else None,
    )


def _rule(msg) -> Rule | None:
    """An owned rule, if it has the one shape the agent creates."""
    host_len = 32 if msg["family"] == socket.AF_INET else 128
    if (msg["src_len"] != host_len or msg["dst_len"] != 0 or msg["action"] != FR_ACT_TO_TBL
            or msg.get("FRA_IIFNAME") or msg.get("FRA_OIFNAME") or msg.get("FRA_FWMARK")):
        return None
    return Rule(
        priority=msg.get("FRA_PRIORITY") or 0,
        src=ip_address(msg.get("FRA_SRC")),
        table=msg.get("FRA_TABLE") or msg["table"],
    )


def named_tables() -> set[int]:
    """Table ids that an rt_tables file gives a name to (a user's tables)."""
    paths = list(RT_TABLES_FILES)
    for directory in RT_TABLES_DIRS:
        paths.extend(sorted(glob.glob(f"{directory}/*.conf")))
    tables = set()
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read(1 << 20).splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split("#", 1)[0].split()
            if len(fields) == 2:
                try:
                    tables.add(int(fields[0], 16 if fields[0].lower().startswith("0x") else 10))
                except ValueError:
                    continue
    return tables - {0, 253, 254, 255}


def _strerror(code: int) -> str:
    return f"{errno.errorcode.get(code, code)}: {os.strerror(code)}"


# -- events ----------------------------------------------------------------



@dataclass(frozen=True)
class Event:
    """The little of a netlink notification that decides whether to reconcile."""

    kind: str  # link | address | route | rule | overflow
    index: int | None = None  # link, address
    mac: str | None = None  # link
    protocol: int | None = None  # address, route, rule
    table: int | None = None  # route, rule


class EventSocket:
    """A raw rtnetlink socket subscribed to link, address, route and rule
    notifications; `drain()` never blocks. Parsing only headers keeps an
    unrelated burst (containers churning veths) cheap."""

    def __init__(self, rcvbuf: int = 4 << 20):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE (root)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE
                        | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE | RTMGRP_IPV6_RULE))
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
            events.extend(_parse_events(data))


def _parse_events(data: bytes) -> list[Event]:
    events = []
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length, msg_type, _flags, _seq, _pid = _NLMSG.unpack_from(data, offset)
        if length < _NLMSG.size:
            break
        body = data[offset + _NLMSG.size: offset + length]
        offset += (length + 3) & ~3
        kind = _KINDS.get(msg_type)
        if msg_type == NLMSG_OVERRUN:
            events.append(Event("overflow"))
        elif kind == "link" and len(body) >= _IFINFO.size:
            _family, _type, index, _fl, _ch = _IFINFO.unpack_from(body)
            mac = _attrs(body, _IFINFO.size).get(IFLA_ADDRESS)
            events.append(Event(kind, index=index, mac=mac.hex(":") if mac else None))
        elif kind == "address" and len(body) >= _IFADDR.size:
            index = _IFADDR.unpack_from(body)[4]
            proto = _attrs(body, _IFADDR.size).get(IFA_PROTO)
            events.append(Event(kind, index=index, protocol=proto[0] if proto else None))
        elif kind == "route" and len(body) >= _RTMSG.size:
            fields = _RTMSG.unpack_from(body)
            table = _attrs(body, _RTMSG.size).get(RTA_TABLE)
            events.append(Event(kind, protocol=fields[5],
                                table=struct.unpack("=I", table)[0] if table else fields[4]))
        elif kind == "rule" and len(body) >= _RTMSG.size:
            fields = _RTMSG.unpack_from(body)
            attrs = _attrs(body, _RTMSG.size)
            proto, table = attrs.get(FRA_PROTOCOL), attrs.get(FRA_TABLE)
            events.append(Event(kind, protocol=proto[0] if proto else None,
                                table=struct.unpack("=I", table)[0] if table else fields[4]))
    return events


def _attrs(body: bytes, offset: int) -> dict[int, bytes]:
    attrs = {}
    while offset + _RTA.size <= len(body):
        length, attr_type = _RTA.unpack_from(body, offset)
        if length < _RTA.size:
            break
        attrs[attr_type & 0x3FFF] = body[offset + _RTA.size: offset + length]
        offset += (length + 3) & ~3
    return attrs
