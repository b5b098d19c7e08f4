"""What a converged ENI looks like in the kernel: the expected tables and
rules, and ``*_problems`` checks listing why an ENI is not (yet) configured
as the agent should (``[]`` when it is)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

from .enis import Eni
from .kernel import (KERNEL_STORES_ADDRESS_PROTOCOLS, PROTOCOL, TABLE_BASE, address_protocols,
                     global6, ip_json, link_by_mac, owned_rules6, routes6, table_of,
                     table_routes)

if TYPE_CHECKING:
    from .topology import Topology

RULE_PRIORITY = 10000
#: The rules of a namespace nobody touched (`ip -j rule`).
DEFAULT_RULES = [
    {"priority": 0, "src": "all", "table": "local"},
    {"priority": 32766, "src": "all", "table": "main"},
    {"priority": 32767, "src": "all", "table": "default"},
]


def expected_table(eni, ifname: str | None = None) -> list[dict]:
    """``ip -j route show table N`` of a converged ENI, sorted by dst."""
    dev = ifname or eni.ifname
    return sorted([
        {"dst": "default", "gateway": eni.gateway, "dev": dev, "protocol": str(PROTOCOL),
         "flags": ["onlink"]},
        {"dst": eni.cidr, "dev": dev, "protocol": str(PROTOCOL), "scope": "link", "flags": []},
    ], key=lambda r: r["dst"])


def expected_rules(ips: Iterable[str], table: int, priority: int = RULE_PRIORITY) -> list[dict]:
    """Owned rules as ``ip -N -j rule`` prints them."""
    return [{"priority": priority, "src": ip, "table": str(table), "protocol": str(PROTOCOL)}
            for ip in ips]


def sorted_rules(entries: list[dict]) -> list[dict]:
    return sorted(entries, key=lambda r: (r["priority"], r.get("src", ""), r.get("table", "")))


# --------------------------------------------------------------------------
# Traffic


def eni_link(topo: Topology, eni: Eni) -> dict | None:
    return link_by_mac(topo.guest, eni.mac)


def eni_table(topo: Topology, eni: Eni, table_base: int = TABLE_BASE) -> int | None:
    link = eni_link(topo, eni)
    return None if link is None else table_base + link["ifindex"]


def eni_problems(topo: Topology, eni: Eni, *, ips: tuple[str, ...] | None = None,
                 priority: int = RULE_PRIORITY, table_base: int = TABLE_BASE,
                 protocol: int = PROTOCOL) -> list[str]:
    """Why ``eni`` is not (yet) configured as eni-agent should: [] when it is.

    Checks the link is up, holds exactly ``ips`` (default: eni.ips) from
    eni-agent with noprefixroute, has a route table ``table_base + ifindex``
    with the subnet route and the default route via the gateway, and one rule
    ``from <ip> lookup <table>`` at ``priority`` per address (and no owned rule
    of this ENI's addresses elsewhere). Each of those routes, rules and (on a
    kernel that stores address protocols) addresses carries eni-agent's
    ``protocol``: configured by eni-agent, not merely present."""
    ips = tuple(eni.ips if ips is None else ips)
    link = eni_link(topo, eni)
    if link is None:
        return [f"no link with MAC {eni.mac}"]
    problems = []
    name, table, mark = link["ifname"], table_base + link["ifindex"], str(protocol)
    if "UP" not in link.get("flags", []):
        problems.append(f"{name} is not up")
    addrs = ip_json(topo.guest, "-4", "addr", "show", "dev", name)
    infos = addrs[0].get("addr_info", []) if addrs else []
    have = {a["local"]: a for a in infos}
    if set(have) != set(ips):
        problems.append(f"{name} addresses {sorted(have)} != {sorted(ips)}")
    for addr in ips:
        info = have.get(addr)
        if info is not None and (info.get("prefixlen") != eni.prefixlen
                                 or not info.get("noprefixroute")):
            problems.append(f"{name} address {addr} is {info}")
    if KERNEL_STORES_ADDRESS_PROTOCOLS and not problems:  # a netlink dump: only when it matters
        unmarked = {ip: proto for ip, proto in address_protocols(topo, name).items()
                    if ip in ips and proto != protocol}
        if unmarked:
            problems.append(f"{name} addresses without protocol {protocol}: {unmarked}")
    routes = table_routes(topo, table)
    dsts = {(r.get("dst"), r.get("gateway"), r.get("dev"), r.get("protocol")) for r in routes}
    for want in ((eni.cidr, None, name, mark), ("default", eni.gateway, name, mark)):
        if want not in dsts:
            problems.append(f"table {table} lacks {want}: {sorted(map(str, dsts))}")
    rules = ip_json(topo.guest, "-N", "rule")  # -N: protocols and tables as numbers
    for addr in ips:
        matching = [r for r in rules if r.get("src") == addr and r.get("srclen", 32) == 32]
        ok = [r for r in matching if r.get("table") == str(table) and r.get("priority") == priority
              and r.get("protocol") == mark]
        if len(ok) != 1 or len(matching) != 1:
            problems.append(f"rules for {addr}: {matching} "
                            f"(want one: {priority} -> table {table}, protocol {protocol})")
    extra = [r for r in rules if r.get("src") in set(eni.ips) - set(ips)]
    if extra:
        problems.append(f"rules left for removed addresses: {extra}")
    return problems


def eni_configured(topo: Topology, eni: Eni, **kwargs: Any) -> bool:
    return not eni_problems(topo, eni, **kwargs)


def expected_rules6(t: Topology, *ifnames: str) -> list[dict]:
    return sorted(({"priority": RULE_PRIORITY, "src": addr, "table": str(table_of(t, name)),
                    "protocol": str(PROTOCOL)}
                   for name in ifnames for addr in t.eni(name).ipv6s),
                  key=lambda r: (r["src"], r["table"]))


def expected_table6(t: Topology, ifname: str) -> list[dict]:
    eni = t.eni(ifname)
    routes = [
        {"dst": eni.ipv6_cidr, "dev": ifname, "protocol": str(PROTOCOL), "flags": []},
        {"dst": "fe80::/64", "dev": ifname, "protocol": str(PROTOCOL), "flags": []},
        {"dst": "default", "gateway": eni.ipv6_gateway, "dev": ifname,
         "protocol": str(PROTOCOL), "flags": ["onlink"]},
    ]
    return sorted(routes, key=lambda r: json.dumps(r, sort_keys=True))


def ipv6_problems(t: Topology, ifname: str) -> list[str]:
    """[] when ``ifname``'s IPv6 is configured as eni-agent should."""
    eni = t.eni(ifname)
    problems = []
    have = global6(t, ifname)
    if set(have) != set(eni.ipv6s):
        problems.append(f"{ifname} IPv6 {sorted(have)} != {sorted(eni.ipv6s)}")
    for addr, info in have.items():
        if (info.get("prefixlen") != eni.ipv6_prefixlen or not info.get("nodad")
                or not info.get("noprefixroute") or info.get("tentative")
                or info.get("dadfailed")):
            problems.append(f"{ifname} {addr}: {info}")
    table = table_of(t, ifname)
    if routes6(t, table) != expected_table6(t, ifname):
        problems.append(f"table {table}: {routes6(t, table)}")
    mine = [r for r in owned_rules6(t) if r["table"] == str(table)]
    if mine != expected_rules6(t, ifname):
        problems.append(f"rules of table {table}: {mine}")
    return problems
