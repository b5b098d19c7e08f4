"""Building kernel messages with pyroute2's own classes, and reading them back
the way the agent's sockets do (pyroute2's rtnetlink marshal): the kernel's
side of the unit tests of the netlink layer, no socket and no root."""

from __future__ import annotations

import socket

from pyroute2.netlink.rtnl import (RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, RTM_NEWRULE)
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

UNSET = 0xFFFFFFFF


def decoded(*messages, port: int = 0) -> list:
    """Encode pyroute2 messages, then parse the bytes as a socket would."""
    data = bytearray()
    for seq, msg in enumerate(messages, 1):
        msg["header"]["sequence_number"] = seq
        msg["header"]["pid"] = port
        msg.encode()
        data += msg.data
    return list(MarshalRtnl().parse(bytes(data)))


def link(index=3, name="eth1", mac="00:16:3e:00:01:01", up=True, msg_type=RTM_NEWLINK,
         family=socket.AF_UNSPEC, master=None, kind=None):
    msg = ifinfmsg()
    msg["family"] = family
    msg["index"] = index
    msg["flags"] = 1 if up else 0
    attrs = [("IFLA_IFNAME", name), ("IFLA_ADDRESS", mac)]
    if master is not None:
        attrs.append(("IFLA_MASTER", master))
    if kind is not None:
        attrs.append(("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", kind)]}))
    msg["attrs"] = attrs
    msg["header"]["type"] = msg_type
    return msg


def address(ip="10.0.1.10", prefixlen=24, index=3, protocol=None, scope=0,
            msg_type=RTM_NEWADDR):
    msg = ifaddrmsg()
    msg["family"] = socket.AF_INET6 if ":" in ip else socket.AF_INET
    msg["prefixlen"] = prefixlen
    msg["index"] = index
    msg["scope"] = scope
    attrs = [("IFA_ADDRESS", ip), ("IFA_LOCAL", ip)]
    if protocol is not None:
        attrs.append(("IFA_PROTO", protocol))
    msg["attrs"] = attrs
    msg["header"]["type"] = msg_type
    return msg


def route(dst="10.0.1.0/24", table=10003, oif=3, gateway=None, protocol=234, rtype=1,
          msg_type=RTM_NEWROUTE, multipath=False, flags=0, prefsrc=None):
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    net, _, length = dst.partition("/")
    msg = rtmsg()
    msg["family"] = socket.AF_INET6 if ":" in net else socket.AF_INET
    msg["dst_len"] = int(length)
    msg["table"] = table if table < 256 else 252
    msg["proto"] = protocol
    msg["type"] = rtype
    attrs = [("RTA_TABLE", table)]
    if int(length):
        attrs.append(("RTA_DST", net))
    if gateway:
        attrs.append(("RTA_GATEWAY", gateway))
    if oif:
        attrs.append(("RTA_OIF", oif))
    if prefsrc:
        attrs.append(("RTA_PREFSRC", prefsrc))
    if multipath:
        attrs.append(("RTA_MULTIPATH", [{"oif": oif, "gateway": gateway}]))
    msg["attrs"] = attrs
    msg["header"]["type"] = msg_type
    msg["header"]["flags"] = flags
    return msg


def rule(src="10.0.1.10", src_len=None, table=10003, protocol=234, priority=10000, action=1,
         msg_type=RTM_NEWRULE, family=None, dst=None, dst_len=0, **extra):
    msg = fibmsg()
    v6 = src is not None and ":" in src
    msg["family"] = family or (socket.AF_INET6 if v6 else socket.AF_INET)
    msg["src_len"] = src_len if src_len is not None else (0 if src is None else 128 if v6 else 32)
    msg["dst_len"] = dst_len
    msg["table"] = table if table < 256 else 0
    msg["action"] = action
    # As the kernel dumps a rule: the suppressors always, "unset".
    attrs = [("FRA_TABLE", table),
             ("FRA_SUPPRESS_PREFIXLEN", extra.pop("FRA_SUPPRESS_PREFIXLEN", UNSET)),
             ("FRA_SUPPRESS_IFGROUP", extra.pop("FRA_SUPPRESS_IFGROUP", UNSET)),
             ("FRA_PRIORITY", priority)]
    if protocol is not None:
        attrs.append(("FRA_PROTOCOL", protocol))
    if src is not None:
        attrs.append(("FRA_SRC", src))
    if dst is not None:
        attrs.append(("FRA_DST", dst))
    attrs += [(name, value) for name, value in extra.items()]
    msg["attrs"] = attrs
    msg["header"]["type"] = msg_type
    return msg
