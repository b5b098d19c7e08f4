"""The reference backend: pyroute2's IPRoute, one request and one ACK wait
per change. Slower (pyroute2 costs ~200 ms to import and ~0.35 ms per
request), kept to cross-check the raw backend in tests and as a fallback:
ENI_AGENT_NETLINK=pyroute2 selects it.
"""

from __future__ import annotations

import socket
from ipaddress import ip_address

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from eni_agent.netlink import wire
from eni_agent.netlink.common import (FAMILIES, IFA_F_NODAD, IFA_F_NOPREFIXROUTE, Outcome,
                                      Result, UdevGate, classify, kernel_marks_addresses,
                                      observed_from)
from eni_agent.plan import Action, Change
from eni_agent.state import Address, Link, Observed, Route


class PyRoute2Netlink:
    def __init__(self, protocol: int):
        self.protocol = protocol
        self.ipr = IPRoute()
        self.udev = UdevGate()
        self.marks_addresses = kernel_marks_addresses()

    port = None  # the daemon then treats the echoes of its own changes as news

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> PyRoute2Netlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def observe(self) -> Observed:
        links = [_link(m) for m in self.ipr.link("dump")]
        addresses, routes, rules = [], [], []
        for family in FAMILIES:
            addresses += [_address(m) for m in self.ipr.addr("dump", family=family)]
            routes += [_route(m) for m in self.ipr.route("dump", family=family)]
            rules += [_rule(m) for m in self.ipr.rule("dump", family=family)]
        return observed_from(links, addresses, routes, rules, self.protocol, self.udev,
                             self.marks_addresses)

    def apply(self, changes: list[Change]) -> list[Result]:
        results, gone = [], set()
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
        target, action = change.target, change.action
        try:
            if action is Action.KEEP_SECONDARIES:
                return classify(change, _raw_request(*wire.set_ipv4_devconf(
                    target.index, wire.IPV4_DEVCONF_PROMOTE_SECONDARIES, 1)))
            if isinstance(target, Link):
                self.ipr.link("set", index=target.index, state="up")
            elif isinstance(target, Address):
                self._address(action, target)
            elif isinstance(target, Route):
                self._route(action, target)
            else:
                verb = "del" if action is Action.REMOVE else "add"
                self.ipr.rule(verb, family=_family(target.version), priority=target.priority,
                              src=str(target.src.network_address),
                              src_len=target.src.prefixlen,
                              table=target.table, protocol=self.protocol,
                              action=wire.FR_ACT_TO_TBL)
        except NetlinkError as e:
            return classify(change, e.code)
        return Result(change, Outcome.DONE)

    def _address(self, action: Action, a: Address) -> None:
        if action is Action.REMOVE:
            self.ipr.addr("del", index=a.index, address=str(a.ip), prefixlen=a.prefixlen)
            return
        flags = IFA_F_NOPREFIXROUTE | (IFA_F_NODAD if a.version == 6 else 0)
        mark = {"proto": self.protocol} if self.marks_addresses else {}
        self.ipr.addr("add", index=a.index, address=str(a.ip), prefixlen=a.prefixlen,
                      flags=flags, **mark)

    def _route(self, action: Action, r: Route) -> None:
        spec = dict(table=r.table, dst=str(r.dst.network_address), dst_len=r.dst.prefixlen,
                    oif=r.oif, proto=self.protocol, family=_family(r.version))
        if r.gateway is not None:
            spec["gateway"] = str(r.gateway)
        if action is Action.REMOVE:
            # pyroute2 defaults the scope to universe, which would not match a
            # scope-link route: RT_SCOPE_NOWHERE matches any scope.
            self.ipr.route("del", scope=wire.RT_SCOPE_NOWHERE, **spec)
            return
        link_scope = r.gateway is None and r.version == 4
        spec.update(type=wire.RTN_UNICAST,
                    scope=wire.RT_SCOPE_LINK if link_scope else wire.RT_SCOPE_UNIVERSE)
        if r.gateway is not None:
            spec["flags"] = wire.RTNH_F_ONLINK
        self.ipr.route("replace" if action is Action.REPLACE else "add", **spec)


def _raw_request(msg_type: int, flags: int, payload: bytes) -> int:
    """One request pyroute2 cannot encode (IFLA_INET_CONF); its error code."""
    with wire.open_socket() as sock:
        sock.send(wire.message(msg_type, wire.NLM_F_REQUEST | wire.NLM_F_ACK | flags, 1, payload))
        for kind, _flags, _seq, _port, body in wire.messages(sock.recv(1 << 16)):
            if kind == wire.NLMSG_ERROR:
                return -wire.I32.unpack_from(body)[0]
    return 0


def _family(version: int) -> int:
    return socket.AF_INET if version == 4 else socket.AF_INET6


def _ip(value):
    return ip_address(value) if value else None


def _link(m) -> wire.LinkRecord:
    af_spec = m.get("IFLA_AF_SPEC")
    inet = af_spec.get_attr("AF_INET") if af_spec else None
    mac = m.get("IFLA_ADDRESS")
    return wire.LinkRecord(m["index"], m.get("IFLA_IFNAME") or f"#{m['index']}",
                           mac.lower() if mac and len(mac) == 17 else None,
                           bool(m["flags"] & wire.IFF_UP), m.get("IFLA_MASTER") or None,
                           bool(inet["promote_secondaries"]) if inet else True)


def _address(m) -> wire.AddressRecord:
    return wire.AddressRecord(m["index"], _ip(m.get("IFA_LOCAL") or m.get("IFA_ADDRESS")),
                              m["prefixlen"], m.get("IFA_PROTO"))


def _route(m) -> wire.RouteRecord:
    return wire.RouteRecord(m["family"], m.get("RTA_TABLE") or m["table"], m["proto"],
                            m["type"], m["dst_len"], _ip(m.get("RTA_DST")),
                            _ip(m.get("RTA_GATEWAY")), m.get("RTA_OIF"),
                            bool(m.get("RTA_MULTIPATH")))


def _rule(m) -> wire.RuleRecord:
    return wire.RuleRecord(m["family"], m.get("FRA_TABLE") or m["table"], m.get("FRA_PROTOCOL"),
                           m.get("FRA_PRIORITY") or 0, _ip(m.get("FRA_SRC")), m["src_len"],
                           m["dst_len"], m["action"],
                           any(m.get(k) for k in ("FRA_IIFNAME", "FRA_OIFNAME", "FRA_FWMARK")))
