"""What both backends share: outcomes, errno meanings, and turning decoded
dump records into an `Observed` snapshot."""

from __future__ import annotations

import enum
import errno
import glob
import os
import re
import socket
import time
from ipaddress import ip_network
from typing import NamedTuple

from eni_agent.errors import PermissionDenied
from eni_agent.netlink import wire
from eni_agent.plan import Action, Change
from eni_agent.state import Address, Link, Observed, Route, Rule

MAIN_TABLE = 254
RT_TABLES_FILES = ("/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables")
RT_TABLES_DIRS = ("/etc/iproute2/rt_tables.d", "/usr/share/iproute2/rt_tables.d")
FAMILIES = (socket.AF_INET, socket.AF_INET6)
IFA_F_NOPREFIXROUTE = 0x200  # the ENI subnet goes only into the ENI's own table
# The cloud allocated the address: duplicate address detection could only
# delay it (a tentative IPv6 address cannot be a source for ~1 s).
IFA_F_NODAD = 0x2


KINDS = frozenset({"links", "addresses", "routes", "rules"})


def touched_kinds(results: list[Result]) -> frozenset[str] | None:
    """What applying these results may have changed in the kernel; None: anything.

    Addresses and links also touch routes: the kernel drops routes through a
    link that goes down or loses its last address.
    """
    kinds = set()
    for result in results:
        if result.outcome is Outcome.LINK_GONE:
            return None
        target = result.change.target
        kinds.add("links" if isinstance(target, Link) else "addresses" if isinstance(
            target, Address) else "routes" if isinstance(target, Route) else "rules")
    if kinds & {"links", "addresses"}:
        kinds.add("routes")
    return frozenset(kinds)


class Outcome(enum.StrEnum):
    DONE = "done"
    ALREADY = "already"  # present already (add) or gone already (remove)
    LINK_GONE = "link-gone"
    FAILED = "failed"


class Result(NamedTuple):
    change: Change
    outcome: Outcome
    error: str = ""


# "Already gone" differs by object: ESRCH for routes, ENOENT for rules,
# EADDRNOTAVAIL for addresses.
_ABSENT = {Address: errno.EADDRNOTAVAIL, Route: errno.ESRCH, Rule: errno.ENOENT}


def classify(change: Change, code: int) -> Result:
    """The meaning of a netlink error code (0: success) for this change."""
    if code == 0:
        return Result(change, Outcome.DONE)
    if code == errno.EPERM:
        raise PermissionDenied("permission denied changing the network: run as root "
                               "(CAP_NET_ADMIN)")
    if code == errno.ENODEV:
        return Result(change, Outcome.LINK_GONE)
    if change.action is Action.REMOVE and code == _ABSENT.get(type(change.target)):
        return Result(change, Outcome.ALREADY)
    if change.action is Action.ADD and code == errno.EEXIST:
        return Result(change, Outcome.ALREADY)
    return Result(change, Outcome.FAILED, strerror(code))


def strerror(code: int) -> str:
    return f"{errno.errorcode.get(code, code)}: {os.strerror(code)}"


def request(change: Change, protocol: int, marks_addresses: bool = True) -> tuple[int, int, bytes]:
    """The rtnetlink request (type, flags, payload) carrying out a change."""
    target, action = change.target, change.action
    if action is Action.KEEP_SECONDARIES:
        return wire.set_ipv4_devconf(target.index, wire.IPV4_DEVCONF_PROMOTE_SECONDARIES, 1)
    if isinstance(target, Link):
        return wire.link_up(target.index)
    if isinstance(target, Address):
        flags = IFA_F_NOPREFIXROUTE | (IFA_F_NODAD if target.version == 6 else 0)
        return wire.address(action is not Action.REMOVE, target.index, target.ip,
                            target.prefixlen, protocol if marks_addresses else None, flags)
    if isinstance(target, Route):
        verb = {Action.ADD: "add", Action.REPLACE: "replace", Action.REMOVE: "del"}[action]
        return wire.route(verb, target.table, target.dst, target.oif, target.gateway, protocol)
    return wire.rule(action is not Action.REMOVE, target.priority, target.src, target.table,
                     protocol)


UDEV_CONTROL = "/run/udev/control"
UDEV_DATA = "/run/udev/data"
UDEV_PATIENCE = 10.0  # seconds: after that, a link udev never finishes with is used anyway


class UdevGate:
    """Whether udev has finished with a link, as systemd-networkd decides it:
    its database entry /run/udev/data/n<ifindex> exists. Only where udev
    manages this namespace: not in a container or a namespace of its own."""

    def __init__(self):
        self.first_seen: dict[int, float] = {}
        self.active = os.path.exists(UDEV_CONTROL) and _in_initial_netns()

    def initialized(self, index: int) -> bool:
        if not self.active or os.path.exists(f"{UDEV_DATA}/n{index}"):
            self.first_seen.pop(index, None)
            return True
        first = self.first_seen.setdefault(index, time.monotonic())
        return time.monotonic() - first > UDEV_PATIENCE


def _in_initial_netns() -> bool:
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return True  # cannot tell (PID 1 hidden): assume the host's namespace


def kernel_marks_addresses() -> bool:
    """Whether the kernel keeps an address's protocol (IFA_PROTO, Linux 5.18+).

    Older kernels (Alibaba Cloud Linux 2's 4.19, CentOS 7's 3.10) silently
    drop it. ENI_AGENT_ADDRESS_MARKS=0/1 overrides the guess (tests use 0).
    """
    override = os.environ.get("ENI_AGENT_ADDRESS_MARKS")
    if override in ("0", "1"):
        return override == "1"
    version = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return version is None or (int(version[1]), int(version[2])) >= (5, 18)


def observed_from(links, addresses, routes, rules, protocol: int,
                  udev: UdevGate | None = None, marks_addresses: bool = True) -> Observed:
    """Aggregate decoded dump records: the agent's own objects (carrying its
    protocol, in the one shape it creates) and what others use.

    Without address marks (an old kernel), an address is the agent's when the
    agent's own `from <address>` rule points at a table of the agent's routes
    through that address's link: the agent always creates the two together.
    """
    owned_addresses, foreign_addresses = set(), set()
    owned_routes, foreign_tables, foreign_default_oifs = set(), set(), set()
    for r in routes:
        if r.protocol == protocol and r.type == wire.RTN_UNICAST and not r.multipath and r.oif:
            unspecified = "0.0.0.0" if r.family == socket.AF_INET else "::"
            dst = ip_network(f"{r.dst or unspecified}/{r.dst_len}", strict=False)
            owned_routes.add(Route(r.table, dst, r.oif, r.gateway))
        else:
            foreign_tables.add(r.table)
            if r.table == MAIN_TABLE and r.dst_len == 0 and r.oif:
                foreign_default_oifs.add(r.oif)
    owned_rules = set()
    for r in rules:
        if (r.protocol == protocol and r.src is not None and r.src_len > 0
                and r.dst_len == 0 and r.action == wire.FR_ACT_TO_TBL and not r.selectors):
            owned_rules.add(Rule(r.priority, ip_network((r.src, r.src_len), strict=False),
                                 r.table))
        else:
            foreign_tables.add(r.table)
    inferred: set[tuple[int, object]] = set()
    if not marks_addresses:
        tables_via = {}
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
