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
from typing import Iterable, Optional

from eni_agent.host import UdevGate, named_tables
from eni_agent.state import Address, Link, Observed, Route, Rule

MAIN_TABLE = 254
RTN_UNICAST = 1  # rtm_type of an ordinary route
FR_ACT_TO_TBL = 1  # a rule that looks a table up


def owns_route(r, protocol: int) -> bool:
    """Marked, and the shape the agent creates: unicast, one next hop, a device."""
    return r.protocol == protocol and r.type == RTN_UNICAST and not r.multipath and bool(r.oif)


def owns_rule(r, protocol: int) -> bool:
    """Marked, and the shape the agent creates: `from <host or prefix> lookup
    <table>`, nothing else selected."""
    return (r.protocol == protocol and r.src is not None and r.src_len > 0
            and r.dst_len == 0 and r.action == FR_ACT_TO_TBL and not r.selectors)


def observed_from(links: Iterable, addresses: Iterable, routes: Iterable, rules: Iterable,
                  protocol: int, udev: Optional[UdevGate] = None,
                  marks_addresses: bool = True) -> Observed:
    """Split kernel records into the agent's own objects and what others use.

    Without address marks (a kernel before 5.18), an address is the agent's
    when the agent's own `from <address>` rule points at a table of the
    agent's routes through that address's link: the agent always creates the
    two together.
    """
    owned_addresses, foreign_addresses = set(), set()
    owned_routes, foreign_tables, foreign_default_oifs = set(), set(), set()
    for r in routes:
        if owns_route(r, protocol):
            unspecified = "0.0.0.0" if r.family == socket.AF_INET else "::"
            dst = ip_network(f"{r.dst or unspecified}/{r.dst_len}", strict=False)
            owned_routes.add(Route(r.table, dst, r.oif, r.gateway))
        else:
            foreign_tables.add(r.table)
            if r.table == MAIN_TABLE and r.dst_len == 0 and r.oif:
                foreign_default_oifs.add(r.oif)
    owned_rules = set()
    for r in rules:
        if owns_rule(r, protocol):
            owned_rules.add(Rule(r.priority, ip_network((r.src, r.src_len), strict=False),
                                 r.table))
        else:
            foreign_tables.add(r.table)
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
        (owned_addresses if ours else foreign_addresses).add(Address(a.index, a.ip, a.prefixlen))
    return Observed(
        links=tuple(sorted(Link(l.index, l.name, l.mac, l.up, l.master, l.promote_secondaries,
                                udev.initialized(l.index) if udev else True)
                           for l in links if l.mac and l.mac != "00:00:00:00:00:00")),
        addresses=frozenset(owned_addresses),
        routes=frozenset(owned_routes),
        rules=frozenset(owned_rules),
        foreign_addresses=frozenset(foreign_addresses),
        foreign_tables=frozenset(foreign_tables),
        named_tables=frozenset(named_tables()),
        foreign_default_oifs=frozenset(foreign_default_oifs),
    )
