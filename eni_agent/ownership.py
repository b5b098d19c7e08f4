"""The ownership rule: eni-agent observes, and so may ever delete, only what
carries its mark.

An address, route or rule is the agent's when it carries the agent's netlink
protocol number *and* has the one shape the agent creates; everything else is
somebody else's, kept only so the plan can avoid it (tables others use, a
main-table default route through an ENI, addresses others put on an ENI).
This module turns kernel records (see `netlink.messages`) into that split.
"""

from __future__ import annotations

import socket
from ipaddress import ip_network
from functools import lru_cache
from typing import Iterable, Optional

from eni_agent.host import UdevGate, named_tables
from eni_agent.state import (MAIN_TABLE, Address, AltName, Link, Observed, Route, Rule,
                             source_network)

RTN_UNICAST = 1  # rtm_type of an ordinary route
FR_ACT_TO_TBL = 1  # a rule that looks a table up


def owns_route(r, protocol: int) -> bool:
    """Marked, and the shape the agent creates: unicast, one next hop, a device."""
    return r.protocol == protocol and r.type == RTN_UNICAST and not r.multipath and bool(r.oif)


def owns_rule(r, protocol: int) -> bool:
    """Marked, and one of the shapes the agent creates: `from <host or
    prefix> lookup <table>` (with `suppress_prefixlength 0` too: the subnet
    lookup of `main_table_first`), nothing else selected; or `from all lookup
    main suppress_prefixlength 0` (the `main_table_first` setting)."""
    if r.protocol != protocol or r.dst_len != 0 or r.action != FR_ACT_TO_TBL or r.selectors:
        return False
    if r.src is not None and r.src_len > 0:
        return r.suppress_prefixlen in (None, 0)
    return r.src_len == 0 and r.table == MAIN_TABLE and r.suppress_prefixlen == 0


# The values are built once per kernel record: the daemon observes the same
# records (kept current by notifications) on every pass.
@lru_cache(maxsize=1 << 16)
def _rule(r) -> Rule:
    if r.src_len == 0:  # from all
        src = source_network("0.0.0.0/0" if r.family == socket.AF_INET else "::/0")
    else:
        src = source_network(r.src, r.src_len)
    return Rule(r.priority, src, r.table, r.suppress_prefixlen)


@lru_cache(maxsize=1 << 16)
def _route(r) -> Route:
    unspecified = "0.0.0.0" if r.family == socket.AF_INET else "::"
    return Route(r.table, ip_network(f"{r.dst or unspecified}/{r.dst_len}", strict=False), r.oif,
                 r.gateway, getattr(r, "prefsrc", None))


@lru_cache(maxsize=1 << 16)
def _address(a) -> Address:
    return Address(a.index, a.ip, a.prefixlen, a.deprecated)


def observed_from(links: Iterable, addresses: Iterable, routes: Iterable, rules: Iterable,
                  protocol: int, udev: Optional[UdevGate] = None,
                  marks_addresses: bool = True, altnames_supported: bool = True) -> Observed:
    """Split kernel records into the agent's own objects and what others use.

    Without address marks (a kernel before 5.18), an address is the agent's
    when the agent's own `from <address>` rule points at a table of the
    agent's routes through that address's link: the agent always creates the
    two together.
    """
    links = tuple(links)
    owned_addresses, foreign_addresses = set(), set()
    owned_routes, foreign_tables, foreign_default_oifs = set(), set(), set()
    foreign_main = set()
    for r in routes:
        if owns_route(r, protocol):
            owned_routes.add(_route(r))
        else:
            foreign_tables.add(r.table)
            if r.table == MAIN_TABLE:
                foreign_main.add((4 if r.family == socket.AF_INET else 6, r.dst, r.dst_len))
                if r.dst_len == 0 and r.oif:
                    foreign_default_oifs.add(r.oif)
    owned_rules, foreign_rule_priorities = set(), set()
    for r in rules:
        if owns_rule(r, protocol):
            owned_rules.add(_rule(r))
        else:
            foreign_tables.add(r.table)
            foreign_rule_priorities.add(r.priority)
    inferred: set = set()
    if not marks_addresses:
        tables_via: dict = {}
        for route in owned_routes:
            tables_via.setdefault(route.table, set()).add(route.oif)
        inferred = {(index, rule.src.network_address) for rule in owned_rules
                    if rule.src.prefixlen == rule.src.max_prefixlen
                    for index in tables_via.get(rule.table, ())}
    for a in addresses:
        if a.ip is None:
            continue
        ours = a.protocol == protocol or (a.index, a.ip) in inferred
        (owned_addresses if ours else foreign_addresses).add(_address(a))
    with_mac = [l for l in links if l.mac and l.mac != "00:00:00:00:00:00"]
    return Observed(
        links=tuple(sorted(Link(l.index, l.name, l.mac, l.up, l.master, l.promote_secondaries,
                                udev.initialized(l.index) if udev else True, l.parent, l.mtu)
                           for l in with_mac)),
        altnames=frozenset(AltName(l.index, name) for l in with_mac for name in l.altnames),
        addresses=frozenset(owned_addresses),
        routes=frozenset(owned_routes),
        rules=frozenset(owned_rules),
        foreign_addresses=frozenset(foreign_addresses),
        foreign_tables=frozenset(foreign_tables),
        named_tables=frozenset(named_tables()),
        foreign_default_oifs=frozenset(foreign_default_oifs),
        foreign_rule_priorities=frozenset(foreign_rule_priorities),
        foreign_main_destinations=frozenset(foreign_main),
        address_marks=marks_addresses,
        macless_names=tuple((l.index, l.name) for l in links
                            if not l.mac or l.mac == "00:00:00:00:00:00"),
        altnames_supported=altnames_supported,
    )
