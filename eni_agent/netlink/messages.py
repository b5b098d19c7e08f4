"""Between the agent's values and pyroute2's rtnetlink message classes.

`request(change, ...)` fills the pyroute2 message (`ifaddrmsg`, `rtmsg`,
`fibmsg`, `ifinfmsg`) that carries out a change; `*_record(msg)` reads a
decoded pyroute2 message into the small record the ownership rule and the
daemon read. Both are pure: no socket, no kernel (tests encode and decode
through pyroute2 alone). pyroute2 does every byte of the encoding.
"""

from __future__ import annotations

import socket
from collections import namedtuple
from functools import lru_cache
from ipaddress import ip_address
from typing import Optional

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST
from pyroute2.netlink import NLMSG_ERROR, NLMSG_NOOP, nla, nlmsg
from pyroute2.netlink.rtnl import (RTM_DELADDR, RTM_DELLINKPROP, RTM_DELROUTE, RTM_DELRULE,
                                   RTM_GETROUTE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWLINKPROP,
                                   RTM_NEWROUTE, RTM_NEWRULE, RTM_SETLINK)
from pyroute2.netlink.rtnl.fibmsg import FR_ACT_TO_TBL, fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import (IFA_F_DEPRECATED, IFA_F_NODAD, IFA_F_NOPREFIXROUTE,
                                             ifaddrmsg)
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import RTNH_F_ONLINK, rtmsg

from eni_agent.plan import Action, Change
from eni_agent.state import Address, AltName, Link, Route

RT_TABLE_COMPAT = 252  # rtm_table when the real id (> 255) is in RTA_TABLE
RT_TABLE_LOCAL = 255
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_NOWHERE = 0, 253, 255
RTN_UNICAST, RTN_LOCAL = 1, 2
RTM_F_LOOKUP_TABLE, RTM_F_FIB_MATCH = 0x1000, 0x2000
IPV4_DEVCONF_PROMOTE_SECONDARIES = 20  # include/uapi/linux/ip.h
INFINITY_LIFE_TIME = 0xFFFFFFFF  # an address's lifetime: forever


# -- requests -------------------------------------------------------------------


class promote_secondaries_msg(nlmsg):  # noqa: N801 (pyroute2's naming)
    """RTM_SETLINK setting net.ipv4.conf.<link>.promote_secondaries = 1.

    pyroute2's `ifinfmsg` decodes IFLA_INET_CONF as the flat array the kernel
    dumps, but a set request must nest one attribute per setting (the kernel's
    inet_set_link_af): this declares that request shape for pyroute2 to encode.
    (Not a subclass of `ifinfmsg`: pyroute2 compiles a class's attribute map
    once and a subclass would inherit its parent's.)
    """

    fields = ifinfmsg.fields
    nla_map = ((26, "IFLA_AF_SPEC", "af_spec"),)

    class af_spec(nla):  # noqa: N801
        nla_map = ((socket.AF_INET, "AF_INET", "inet"),)

        class inet(nla):  # noqa: N801
            nla_map = ((1, "IFLA_INET_CONF", "conf"),)

            class conf(nla):  # noqa: N801
                nla_map = ((IPV4_DEVCONF_PROMOTE_SECONDARIES,
                            "IPV4_DEVCONF_PROMOTE_SECONDARIES", "uint32"),)


def _family(version: int) -> int:
    return socket.AF_INET if version == 4 else socket.AF_INET6


def request(change: Change, protocol: int, marks_addresses: bool = True):
    """The pyroute2 message carrying out a change (header type and flags set,
    sequence number left to the sender)."""
    target, action = change.target, change.action
    if action is Action.KEEP_SECONDARIES:
        msg = promote_secondaries_msg()
        msg["index"] = target.index
        msg["attrs"] = [("IFLA_AF_SPEC", {"attrs": [("AF_INET", {"attrs": [
            ("IFLA_INET_CONF", {"attrs": [("IPV4_DEVCONF_PROMOTE_SECONDARIES", 1)]})]})]})]
        return _header(msg, RTM_SETLINK, 0)
    if isinstance(target, AltName):
        return _altname(action, target)
    if isinstance(target, Link):
        msg = ifinfmsg()
        msg["index"] = target.index
        if action is Action.SET_MTU:
            msg["attrs"] = [("IFLA_MTU", target.mtu)]
        else:
            msg["flags"] = msg["change"] = IFF_UP
        return _header(msg, RTM_NEWLINK, 0)
    if isinstance(target, Address):
        return _address(action, target, protocol if marks_addresses else None)
    if isinstance(target, Route):
        return _route(action, target, protocol)
    return _rule(action, target, protocol)


def _header(msg, msg_type: int, flags: int):
    msg["header"]["type"] = msg_type
    msg["header"]["flags"] = NLM_F_REQUEST | flags
    return msg


def _altname(action: Action, altname: AltName):
    """`ip link property add|del dev <link> altname <name>`."""
    msg = ifinfmsg()
    msg["index"] = altname.index
    msg["attrs"] = [("IFLA_PROP_LIST", {"attrs": [("IFLA_ALT_IFNAME", altname.name)]})]
    if action is Action.REMOVE:
        return _header(msg, RTM_DELLINKPROP, 0)
    return _header(msg, RTM_NEWLINKPROP, NLM_F_CREATE | NLM_F_EXCL)


def _address(action: Action, a: Address, protocol: Optional[int]):
    msg = ifaddrmsg()
    msg["family"] = _family(a.version)
    msg["prefixlen"] = a.prefixlen
    msg["index"] = a.index
    msg["scope"] = RT_SCOPE_UNIVERSE
    ip = str(a.ip)
    attrs = [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip)]
    if action is Action.REMOVE:
        msg["attrs"] = attrs
        return _header(msg, RTM_DELADDR, 0)
    # The ENI subnet goes only into the ENI's own table; the cloud allocated the
    # address, so duplicate address detection could only delay it (a tentative
    # IPv6 address cannot be a source for ~1 s).
    flags = IFA_F_NOPREFIXROUTE | (IFA_F_NODAD if a.version == 6 else 0)
    msg["flags"] = flags & 0xFF
    attrs.append(("IFA_FLAGS", flags))
    if protocol is not None:
        attrs.append(("IFA_PROTO", protocol))
    if a.deprecated:
        attrs.append(("IFA_CACHEINFO", {"ifa_preferred": 0, "ifa_valid": INFINITY_LIFE_TIME,
                                        "cstamp": 0, "tstamp": 0}))
    msg["attrs"] = attrs
    return _header(msg, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL)


def _route(action: Action, r: Route, protocol: int):
    msg = rtmsg()
    msg["family"] = _family(r.version)
    msg["dst_len"] = r.dst.prefixlen
    msg["table"] = r.table if r.table < 256 else RT_TABLE_COMPAT
    msg["proto"] = protocol
    attrs = [("RTA_TABLE", r.table)]
    if r.dst.prefixlen:
        attrs.append(("RTA_DST", str(r.dst.network_address)))
    if r.gateway is not None:
        attrs.append(("RTA_GATEWAY", str(r.gateway)))
    if r.src is not None:
        attrs.append(("RTA_PREFSRC", str(r.src)))
    attrs.append(("RTA_OIF", r.oif))
    msg["attrs"] = attrs
    if action is Action.REMOVE:
        msg["scope"] = RT_SCOPE_NOWHERE  # matches a route of any scope
        return _header(msg, RTM_DELROUTE, 0)
    on_link = r.gateway is None and r.version == 4  # IPv6 routes have no scopes
    msg["scope"] = RT_SCOPE_LINK if on_link else RT_SCOPE_UNIVERSE
    msg["type"] = RTN_UNICAST
    msg["flags"] = RTNH_F_ONLINK if r.gateway is not None else 0
    replace = NLM_F_REPLACE if action is Action.REPLACE else NLM_F_EXCL
    return _header(msg, RTM_NEWROUTE, NLM_F_CREATE | replace)


def _rule(action: Action, r, protocol: int):
    msg = fibmsg()
    msg["family"] = _family(r.version)
    msg["src_len"] = r.src.prefixlen  # a host rule: /32 or /128; a delegated prefix
    msg["table"] = r.table if r.table < 256 else 0
    msg["action"] = FR_ACT_TO_TBL
    attrs = [("FRA_SRC", str(r.src.network_address))] if r.src.prefixlen else []  # /0: from all
    attrs += [("FRA_PRIORITY", r.priority), ("FRA_TABLE", r.table), ("FRA_PROTOCOL", protocol)]
    if r.suppress_prefixlength is not None:
        attrs.append(("FRA_SUPPRESS_PREFIXLEN", r.suppress_prefixlength))
    msg["attrs"] = attrs
    if action is Action.REMOVE:
        return _header(msg, RTM_DELRULE, 0)
    return _header(msg, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL)


def lookup_request(src, dst):
    """`ip route get <dst> [from <src>] fibmatch`: the route the kernel picks
    for a packet, as its routing table holds it (with its table and mark),
    rules and all."""
    msg = rtmsg()
    msg["family"] = _family(dst.version)
    msg["dst_len"] = dst.max_prefixlen
    attrs = [("RTA_DST", str(dst))]
    if src is not None:
        msg["src_len"] = src.max_prefixlen
        attrs.append(("RTA_SRC", str(src)))
    # IPv4 names the answering table only when asked; IPv6 refuses the flag
    # (and always names it).
    msg["flags"] = RTM_F_FIB_MATCH | (RTM_F_LOOKUP_TABLE if dst.version == 4 else 0)
    msg["attrs"] = attrs
    return _header(msg, RTM_GETROUTE, 0)


def barrier():
    """A no-op the kernel only acknowledges. Sent after requests that are
    answered only when they fail, its ACK says they are all done: the kernel
    handles one send's messages in order before returning."""
    return _header(nlmsg(), NLMSG_NOOP, NLM_F_ACK)


# -- records ----------------------------------------------------------------------

# What the ownership rule and the daemon read of a kernel object: plain named
# tuples, thousands of them per dump.
# parent: the link beneath a stacked one (see STACKED_KINDS), else None.
# kind: the netlink link kind (veth, macvlan, bridge, tun, vlan, ...); None for
# a NIC, which has a device (PCI, virtio) behind it.
# altnames: a tuple of names (IFLA_PROP_LIST; empty before Linux 5.5)
# mtu: IFLA_MTU (0: not known)
LinkRecord = namedtuple("LinkRecord",
                        "index name mac up master promote_secondaries parent kind altnames mtu",
                        defaults=(None, None, (), 0))
# Link kinds stacked on a parent whose MAC they may share: never the ENI itself.
STACKED_KINDS = frozenset({"macvlan", "macvtap", "vlan", "ipvlan", "ipvtap"})
# scope: RT_SCOPE_LINK for link-local addresses (fe80::, the kernel's own)
# deprecated: IFA_F_DEPRECATED (preferred_lft 0)
AddressRecord = namedtuple("AddressRecord", "index ip prefixlen protocol scope deprecated",
                           defaults=(RT_SCOPE_UNIVERSE, False))
# dst None: the default route; oif None: no RTA_OIF (multipath, blackhole)
RouteRecord = namedtuple("RouteRecord", "family table protocol type dst_len dst gateway oif "
                                        "multipath prefsrc", defaults=(None,))
# selectors: iif/oif/fwmark/suppress_ifgroup..., so not a rule of the agent's shape;
# suppress_prefixlen: None when unset
RuleRecord = namedtuple("RuleRecord", "family table protocol priority src src_len dst_len action "
                                      "selectors suppress_prefixlen", defaults=(None,))
# error: 0, or the errno of a lookup that found no way (ENETUNREACH; a rule's
# prohibit (EACCES), unreachable (EHOSTUNREACH), blackhole (EINVAL))
LookupRecord = namedtuple("LookupRecord", "error type table oif gateway dst_len protocol")
RULE_SELECTORS = ("FRA_IIFNAME", "FRA_OIFNAME", "FRA_FWMARK", "FRA_UID_RANGE", "FRA_IP_PROTO",
                  "FRA_SPORT_RANGE", "FRA_DPORT_RANGE", "FRA_L3MDEV", "FRA_GOTO")
# Always dumped, 0xffffffff meaning "not set".
UNSET = 0xFFFFFFFF


@lru_cache(maxsize=8192)
def _ip(text: Optional[str]):
    """One ip_address object per address text, however often it is dumped."""
    return ip_address(text) if text else None


def _attrs(msg) -> dict:
    # One pass over the attributes: pyroute2's get() searches the list per name.
    return {slot[0]: slot[1] for slot in msg["attrs"]}


def link_record(msg) -> LinkRecord:
    a = _attrs(msg)
    promote = True
    af_spec = a.get("IFLA_AF_SPEC")
    if af_spec is not None:
        inet = af_spec.get_attr("AF_INET")
        if inet is not None:
            promote = bool(inet["promote_secondaries"])
    mac = a.get("IFLA_ADDRESS")
    index = msg["index"]
    info = a.get("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    props = a.get("IFLA_PROP_LIST")
    altnames = tuple(props.altnames()) if props is not None else ()
    return LinkRecord(index, a.get("IFLA_IFNAME") or f"#{index}",
                      mac.lower() if mac and len(mac) == 17 else None,
                      bool(msg["flags"] & IFF_UP), a.get("IFLA_MASTER") or None, promote,
                      _parent(a, kind), kind or None, altnames,
                      a.get("IFLA_MTU") or 0)


def _parent(attrs: dict, kind: Optional[str]) -> Optional[int]:
    """The link a stacked link sits on. (A veth's IFLA_LINK names its peer,
    hence the kind is checked first.)"""
    if kind not in STACKED_KINDS or attrs.get("IFLA_LINK") in (None, 0):
        return None
    return attrs["IFLA_LINK"]


def address_record(msg) -> AddressRecord:
    a = _attrs(msg)
    return AddressRecord(msg["index"], _ip(a.get("IFA_LOCAL") or a.get("IFA_ADDRESS")),
                         msg["prefixlen"], a.get("IFA_PROTO"), msg["scope"],
                         bool(a.get("IFA_FLAGS", msg["flags"]) & IFA_F_DEPRECATED))


def route_record(msg) -> RouteRecord:
    a = _attrs(msg)
    return RouteRecord(msg["family"], a.get("RTA_TABLE") or msg["table"], msg["proto"],
                       msg["type"], msg["dst_len"], _ip(a.get("RTA_DST")),
                       _ip(a.get("RTA_GATEWAY")), a.get("RTA_OIF"), "RTA_MULTIPATH" in a,
                       _ip(a.get("RTA_PREFSRC")))


def lookup_record(msg) -> LookupRecord:
    error = msg["header"]["error"]
    if error is not None or msg["header"]["type"] == NLMSG_ERROR:
        return LookupRecord(getattr(error, "code", 0) or -1, 0, 0, None, None, 0, 0)
    a = _attrs(msg)
    return LookupRecord(0, msg["type"], a.get("RTA_TABLE") or msg["table"], a.get("RTA_OIF"),
                        _ip(a.get("RTA_GATEWAY")), msg["dst_len"], msg["proto"])


def rule_record(msg) -> RuleRecord:
    a = _attrs(msg)
    return RuleRecord(msg["family"], a.get("FRA_TABLE") or msg["table"], a.get("FRA_PROTOCOL"),
                      a.get("FRA_PRIORITY") or 0, _ip(a.get("FRA_SRC")), msg["src_len"],
                      msg["dst_len"], msg["action"],
                      any(k in a for k in RULE_SELECTORS)
                      or a.get("FRA_SUPPRESS_IFGROUP", UNSET) != UNSET,
                      _set(a.get("FRA_SUPPRESS_PREFIXLEN", UNSET)))


def _set(value: int) -> Optional[int]:
    return None if value == UNSET else value
