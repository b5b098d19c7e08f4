"""Reading the kernel independently of the agent: the one place tests read
addresses, routes, rules and links.

``ip -j`` for almost everything (``-N`` where protocols and tables must be
numbers, whatever rt_protos and rt_tables name them), and a bare pyroute2
dump for address protocols (IFA_PROTO), which iproute2 6.1 cannot print. None
of the agent's code is involved. ``PROTOCOL`` is the mark the agent puts on
what it owns (``ip -N`` prints it as ``"234"``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .commands import ip, run_in
from .namespaces import in_netns

if TYPE_CHECKING:
    from .topology import Topology

#: The netlink protocol the agent marks its routes, rules and addresses with.
PROTOCOL = 234
TABLE_BASE = 10000


def ip_json(ns: str, *args: Any) -> list[dict]:
    """Kernel state as parsed JSON: ``ip -n NS -j ARGS...``.

    Examples: ``ip_json(ns, "rule")``, ``ip_json(ns, "route", "show", "table",
    "all")``, ``ip_json(ns, "-d", "addr")``.
    """
    out = ip(ns, "-j", *args).stdout.strip()
    return json.loads(out) if out else []


def link_by_mac(ns: str, mac: str) -> dict | None:
    """The ``ip -j link`` entry with MAC ``mac`` in ``ns``, or None."""
    for link in ip_json(ns, "link", "show"):
        if link.get("address", "").lower() == mac.lower():
            return link
    return None


# Fields that change without anybody touching the configuration.
_VOLATILE_ADDR_KEYS = {"valid_life_time", "preferred_life_time", "tentative", "dadfailed"}
_VOLATILE_ROUTE_KEYS = {"expires", "cacheinfo"}
_LINK_KEYS = ("ifname", "link_type", "address", "flags", "mtu", "master")


def _strip(entries: list[dict], volatile: set[str]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in volatile} for e in entries]


def _sorted_routes(routes: list[dict]) -> list[dict]:
    # Dump order of routes is not meaningful (it follows table-hash order);
    # group by table for readable diffs, then make the order total.
    return sorted(routes, key=lambda r: (str(r.get("table", "main")), str(r.get("dst")),
                                         json.dumps(r, sort_keys=True)))


def namespace_state(ns: str, *, ipv6: bool = False) -> dict[str, list[dict]]:
    """Normalized snapshot of ``ns``: links, addresses, rules, routes of all
    tables (IPv4; IPv6 too if ``ipv6``), from ``ip -j``.

    Volatile fields (address lifetimes, DAD flags, route expiry/cache info,
    ifindex, operstate) are dropped. Links are sorted by name; addresses keep
    kernel order per interface (primary/secondary order is meaningful); rules
    keep kernel order (= evaluation order); routes are sorted. Two snapshots
    compare equal iff the configuration is unchanged.
    """
    families = ["-4", "-6"] if ipv6 else ["-4"]
    links, addrs = [], []
    for link in sorted(ip_json(ns, "addr", "show"), key=lambda e: e["ifname"]):
        links.append({k: link[k] for k in _LINK_KEYS if k in link})
        for a in link.get("addr_info", []):
            if ipv6 or a.get("family") == "inet":
                addrs.append({"ifname": link["ifname"],
                              **{k: v for k, v in a.items() if k not in _VOLATILE_ADDR_KEYS}})
    rules, routes = [], []
    for fam in families:
        rules += _strip(ip_json(ns, fam, "rule", "show"), _VOLATILE_ROUTE_KEYS)
        routes += _strip(ip_json(ns, fam, "route", "show", "table", "all"),
                         _VOLATILE_ROUTE_KEYS)
    return {"links": links, "addresses": addrs, "rules": rules, "routes": _sorted_routes(routes)}


def guest_state(topo: Topology) -> dict[str, list[dict]]:
    """:func:`namespace_state` of the guest: assert ``guest_state(t) == before``
    to check that kernel state is unchanged."""
    return namespace_state(topo.guest, ipv6=topo.ipv6)


def kernel_config(topo: Topology) -> dict[str, list[dict]]:
    """guest_state without links: addresses, rules, routes (what cleanup restores)."""
    state = guest_state(topo)
    return {k: state[k] for k in ("addresses", "rules", "routes")}


def dumps(state: Any) -> str:
    """Canonical text of a snapshot, for byte-for-byte comparisons."""
    return json.dumps(state, sort_keys=True, indent=1)


def describe(topo: Topology) -> str:
    """The guest's addresses, rules and tables, for failure messages."""
    out = []
    for args in (("-br", "addr"), ("rule",), ("route", "show", "table", "all")):
        cp = run_in(topo.guest, "ip", *args)
        out.append(f"$ ip {' '.join(args)}\n{cp.stdout}{cp.stderr}")
    return "\n".join(out)


def ifindex(topo: Topology, ifname: str) -> int:
    return ip_json(topo.guest, "link", "show", "dev", ifname)[0]["ifindex"]


def table_of(topo: Topology, ifname: str, base: int = TABLE_BASE) -> int:
    """The table eni-agent should use for ``ifname``: base + ifindex."""
    return base + ifindex(topo, ifname)


def protocol_names() -> set[str]:
    """How ``ip`` prints protocol 234: the number, or the name an rt_protos
    file gives it (scripts/install.sh installs ``234 eni-agent``)."""
    names = {str(PROTOCOL)}
    paths = []
    for root in ("/etc/iproute2", "/usr/share/iproute2", "/usr/lib/iproute2"):
        paths += [Path(root, "rt_protos"), *sorted(Path(root, "rt_protos.d").glob("*.conf"))]
    for path in paths:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split("#", 1)[0].split()
            if len(fields) == 2 and fields[0] == str(PROTOCOL):
                names.add(fields[1])
    return names


def _numeric_protocol(entries: list[dict]) -> list[dict]:
    """Entries with protocol 234 spelled "234" whatever rt_protos says."""
    names = protocol_names()
    return [{**e, "protocol": str(PROTOCOL)} if e.get("protocol") in names else e
            for e in entries]


def rules(topo: Topology) -> list[dict]:
    """``ip -j rule`` in the guest, kernel order (protocol 234 as "234")."""
    return _numeric_protocol(ip_json(topo.guest, "rule", "show"))


def owned_rules(topo: Topology) -> list[dict]:
    """Rules carrying protocol 234 (``ip -N``: numbers, never rt_protos names)."""
    return [r for r in ip_json(topo.guest, "-N", "rule", "show") if r.get("protocol") == str(PROTOCOL)]


def owned_routes(topo: Topology) -> list[dict]:
    """Routes of every table carrying protocol 234."""
    return [r for r in ip_json(topo.guest, "-N", "route", "show", "table", "all")
            if r.get("protocol") == str(PROTOCOL)]


def rule_sources(topo: Topology) -> set[str]:
    return {r["src"] for r in rules(topo)}


def table_routes(topo: Topology, table: int) -> list[dict]:
    """``ip -j -4 route show table N``, sorted by destination (protocol 234 as
    "234"); [] when the table does not exist."""
    cp = ip(topo.guest, "-j", "-4", "route", "show", "table", table, check=False)
    routes = json.loads(cp.stdout) if cp.returncode == 0 and cp.stdout.strip() else []
    return sorted(_numeric_protocol(routes), key=lambda r: r["dst"])


def routes_in_table(topo: Topology, table: int) -> list[dict]:
    """Routes of ``table`` from the ``table all`` dump (empty if the table is
    gone); ``ip -N``: numbers only, even for a table named in rt_tables."""
    return [r for r in ip_json(topo.guest, "-N", "route", "show", "table", "all")
            if r.get("table") == str(table)]


def main_routes(topo: Topology) -> list[dict]:
    return ip_json(topo.guest, "route", "show", "table", "main")


def link(topo: Topology, ifname: str) -> dict:
    return ip_json(topo.guest, "addr", "show", "dev", ifname)[0]


def addresses(topo: Topology, ifname: str) -> list[dict]:
    """IPv4 ``addr_info`` of ``ifname`` without the ticking lifetimes, kernel order."""
    return [{k: v for k, v in a.items() if not k.endswith("_life_time")}
            for a in link(topo, ifname).get("addr_info", []) if a.get("family") == "inet"]


def address_ips(topo: Topology, ifname: str) -> list[str]:
    return [a["local"] for a in addresses(topo, ifname)]


def is_up(topo: Topology, ifname: str) -> bool:
    return "UP" in link(topo, ifname)["flags"]


# --------------------------------------------------------------------------
# Address protocols (IFA_PROTO): a plain pyroute2 dump
# --------------------------------------------------------------------------

def _kernel_stores_address_protocols() -> bool:
    """IFA_PROTO exists since Linux 5.18; before, no address carries a
    protocol (and eni-agent, guessing the same way, marks none)."""
    version = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return version is None or (int(version[1]), int(version[2])) >= (5, 18)


KERNEL_STORES_ADDRESS_PROTOCOLS = _kernel_stores_address_protocols()


def address_protocols(topo: Topology, ifname: str | None = None) -> dict[str, int]:
    """The IFA_PROTO (0 if none) of the guest's IPv4 addresses, from a plain
    pyroute2 dump: ``{"eth1 10.0.1.10/24": 234, ...}`` for every link, or
    ``{"10.0.1.10": 234, ...}`` for ``ifname`` only."""
    from pyroute2 import IPRoute  # here: most test files never need it

    def dump() -> list[tuple[str, str, int, int]]:
        with IPRoute() as ipr:
            names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in ipr.get_links()}
            return [(names.get(m["index"], "?"), m.get_attr("IFA_LOCAL"), m["prefixlen"],
                     m.get_attr("IFA_PROTO") or 0)
                    for m in ipr.get_addr(family=socket.AF_INET)]
    found = in_netns(topo.guest, dump)
    if ifname is not None:
        return {addr: proto for name, addr, _, proto in found if name == ifname}
    return {f"{name} {addr}/{plen}": proto for name, addr, plen, proto in found}


# --------------------------------------------------------------------------
# IPv6
# --------------------------------------------------------------------------

def settle_ipv6(t: Topology, timeout: float = 15.0) -> None:
    """Wait until no guest address is tentative (the kernel's link-local
    addresses of links just brought up are, for about a second), so that
    snapshots compare equal."""
    deadline = time.monotonic() + timeout
    while True:
        tentative = [a["local"] for link in ip_json(t.guest, "-6", "addr")
                     for a in link.get("addr_info", []) if a.get("tentative")]
        if not tentative:
            return
        assert time.monotonic() < deadline, f"still tentative: {tentative}"
        time.sleep(0.1)


def global6(t: Topology, ifname: str) -> dict[str, dict]:
    """The global IPv6 addresses of ``ifname``: {address: addr_info}."""
    links = ip_json(t.guest, "-6", "addr", "show", "dev", ifname)
    return {a["local"]: a for link in links for a in link.get("addr_info", [])
            if a.get("scope") == "global"}


def link_local6(t: Topology, ifname: str) -> list[str]:
    links = ip_json(t.guest, "-6", "addr", "show", "dev", ifname)
    return [a["local"] for link in links for a in link.get("addr_info", [])
            if a.get("scope") == "link"]


def rules6(t: Topology) -> list[dict]:
    """``ip -6 -N -j rule`` (protocols as numbers)."""
    return ip_json(t.guest, "-6", "-N", "rule")


def owned_rules6(t: Topology) -> list[dict]:
    return sorted((r for r in rules6(t) if r.get("protocol") == str(PROTOCOL)),
                  key=lambda r: (r["src"], r["table"]))


def routes6(t: Topology, table: int | str) -> list[dict]:
    """IPv6 routes of one table (protocols as numbers), sorted, without metrics."""
    cp = ip(t.guest, "-j", "-6", "-N", "route", "show", "table", str(table), check=False)
    if cp.returncode != 0 and "does not exist" in cp.stderr:
        return []  # no route in that table at all
    assert cp.returncode == 0, cp.stderr
    routes = json.loads(cp.stdout) if cp.stdout.strip() else []
    return sorted(({k: v for k, v in r.items() if k not in ("metric", "pref")} for r in routes),
                  key=lambda r: json.dumps(r, sort_keys=True))
