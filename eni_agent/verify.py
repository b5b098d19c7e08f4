"""Verification by asking the kernel: does a reply from each ENI address leave
through its ENI, and does the kernel accept packets to it?

Finding the agent's objects in place says they exist, not that they work: a
foreign rule looked up first (`priority 100 from all lookup main`, or one at
the agent's own priority that came before its rules), or the `local` table's
routes gone (`ip route flush table all`), leave every address dead with every
object present. So, for each ENI whose objects are in place, the kernel is asked:
  - the route it picks for a reply from the address to a destination beyond
    the gateway (outside the vswitch): it must go out the ENI's link, via the
    gateway;
  - the same to an address in the vswitch: out the ENI's link, on-link;
  - the local table's `local` routes through the link: one per address, or the
    kernel takes no packet addressed to it.
With `main_table_first`, an answer from `main` by a route more specific than
a default is the design, not a defeat.

Asking costs one pyroute2-encoded request each (~0.1 ms), so addresses no rule
tells apart are asked about once: the agent's own `from <address>` rules
differ only by source; any rule that covers some addresses and not others,
or shares its priority with another that can match, sets those apart.
32 ENIs x 20 addresses cost 64 lookups and 32 counts, not 1,920 questions.
The daemon's session keeps the answers until the kernel's records change.
"""

from __future__ import annotations

import errno
import socket
from collections import Counter
from ipaddress import ip_address, ip_network
from typing import TYPE_CHECKING, NamedTuple, Optional

from eni_agent.state import IP, MAIN_TABLE, Link, Rule, source_network

if TYPE_CHECKING:
    from eni_agent.config import Config
    from eni_agent.desired import Desired, DesiredEni
    from eni_agent.netlink import Netlink
    from eni_agent.state import Network, Observed

# Destinations "beyond the gateway": documentation ranges, which no network
# routes (the first not inside the ENI's vswitch is used).
BEYOND = {4: tuple(map(ip_address, ("203.0.113.1", "198.51.100.1", "192.0.2.1"))),
          6: tuple(map(ip_address, ("2001:db8:ffff::1", "3fff:ffff::1")))}
FR_ACT_TO_TBL = 1
RTN_LOCAL = 2
_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
_ACTIONS = {2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable", 8: "prohibit"}
SHOWN = 3  # addresses named per finding; the rest are counted


class Question(NamedTuple):
    """One route lookup and what its answer must be."""

    src: IP  # stands for `addresses` (no rule tells them apart)
    dst: IP
    where: str  # "beyond the gateway" | "in the vswitch"
    gateway: Optional[IP]  # the next hop expected; None: on-link
    addresses: tuple


def findings(nl: Netlink, desired: Desired, observed: Observed, config: Config,
             macs: set) -> dict[str, list[str]]:
    """What defeats the ENIs with these MACs, per MAC: one line per cause."""
    rules = nl.rule_records()
    host_ips = {a.ip for a in observed.addresses | observed.foreign_addresses}
    names = observed.link_names()
    indexes = {v: RuleIndex([r for r in rules if r.family == _FAMILY[v]]) for v in (4, 6)}
    asked: list[tuple[DesiredEni, Question]] = []
    for d in desired.enis:
        if d.eni.mac in macs and d.link is not None and d.table is not None:
            asked += [(d, q) for v in (4, 6) for q in _questions(d, v, indexes[v], host_ips)]
    answers = nl.route_lookups([(q.src, q.dst) for _, q in asked])
    found: dict[str, list[str]] = {}
    for (d, question), answer in zip(asked, answers):
        problem = judge(question, answer, d.link, d.table, rules, names, config)
        if problem:
            found.setdefault(d.eni.mac, []).append(problem)
    for d in desired.enis:
        if d.eni.mac in macs and d.link is not None:
            missing = _missing_local_routes(nl, d, observed)
            if missing:
                found.setdefault(d.eni.mac, []).append(missing)
    return found


def _questions(d: DesiredEni, version: int, index: RuleIndex, host_ips: set) -> list[Question]:
    eni = d.eni
    cidr, gateway = (eni.cidr, eni.gateway) if version == 4 else (eni.ipv6_cidr, eni.ipv6_gateway)
    ips = sorted(a.ip for a in d.addresses if a.version == version)
    if not ips or cidr is None:
        return []
    beyond = next((ip for ip in BEYOND[version] if ip not in cidr), None)
    near = _vswitch_peer(cidr, host_ips)
    asked = []
    for group in index.classes(ips):
        if beyond is not None and gateway is not None:
            asked.append(Question(group[0], beyond, "beyond the gateway", gateway, tuple(group)))
        if near is not None:
            asked.append(Question(group[0], near, "in the vswitch", None, tuple(group)))
    return asked


def _vswitch_peer(cidr: Network, host_ips: set) -> Optional[IP]:
    """An address in the vswitch that is not this host's."""
    if cidr.num_addresses < 4:
        return None
    for k in range(2, 10):
        if cidr[-k] not in host_ips:
            return cidr[-k]
    return None


class RuleIndex:
    """The rules of one family (in the kernel's order), indexed by source."""

    def __init__(self, rules: list):
        self.by_host: dict = {}
        self.prefixes = []
        self.everyone: Counter = Counter()  # priorities of rules matching any source
        for index, r in enumerate(rules):
            if r.src is None or r.src_len == 0:
                self.everyone[r.priority] += 1
            elif r.src_len == r.src.max_prefixlen:
                self.by_host.setdefault(r.src, []).append((index, r))
            else:
                self.prefixes.append((index, r, ip_network((r.src, r.src_len), strict=False)))

    def classes(self, ips: list) -> list[list]:
        """The addresses grouped by what the rules can tell of them: a lookup
        from one answers for all of its group."""
        groups: dict = {}
        for ip in ips:
            covering = self.by_host.get(ip, []) + \
                [(i, r) for i, r, net in self.prefixes if ip in net]
            crowded = self.everyone + Counter(r.priority for _, r in covering)
            signature = tuple(sorted(
                (r.priority, index) if r.selectors or crowded[r.priority] > 1 else
                (r.priority, -1, r.table, r.action, r.suppress_prefixlen)
                for index, r in covering))
            groups.setdefault(signature, []).append(ip)
        return list(groups.values())


def classes(ips: list, rules: list) -> list[list]:
    return RuleIndex(rules).classes(ips)


def judge(q: Question, answer, link: Link, table: int, rules: list, names: dict,
          config: Config) -> str:
    """What is wrong with the kernel's answer to a question, or ""."""
    if answer.error == 0 and answer.oif == link.index and answer.gateway == q.gateway:
        return ""
    if config.main_table_first and answer.error == 0 and answer.table == MAIN_TABLE \
            and answer.dst_len > 0:
        return ""  # main routes it more specifically: main_table_first's design
    who = _addresses(q.addresses)
    if answer.error:
        why = _culprit(rules, q.src, None, config) or \
            f"no route ({errno.errorcode.get(answer.error, answer.error)})"
        return f"replies from {who} to {q.dst} ({q.where}) cannot be routed: {why}"
    out = names.get(answer.oif, f"#{answer.oif}") if answer.oif else "several links"
    via = f" via {answer.gateway}" if answer.gateway else ""
    if answer.table == table:
        why = f"table {table} routes it so (a route eni-agent did not add?)"
    else:
        why = _culprit(rules, q.src, answer, config) or \
            f"table {_table(answer.table)} answered before eni-agent's rule"
    return (f"replies from {who} to {q.dst} ({q.where}) leave through {out}{via} "
            f"(table {_table(answer.table)}), not {link.name}: {why}")


def _culprit(rules: list, src: IP, answer, config: Config) -> str:
    """The first rule that matches `src` and gives this answer (a lookup in
    the table that answered, or with `answer` None a rule that refuses),
    ahead of the agent's own rule for it. Rules with other selectors (iif,
    fwmark...) are named only when no plain rule explains it."""
    family = _FAMILY[src.version]
    ordered = sorted((r for r in rules if r.family == family), key=lambda r: r.priority)
    plain = _first_culprit([r for r in ordered if not r.selectors], src, answer, config)
    return plain or _first_culprit(ordered, src, answer, config)


def _first_culprit(rules: list, src: IP, answer, config: Config) -> str:
    for r in rules:
        if r.priority > config.rule_priority:
            break
        if r.src is not None and r.src_len and src not in ip_network((r.src, r.src_len),
                                                                  strict=False):
            continue
        if r.protocol == config.protocol and r.src_len == src.max_prefixlen:
            return ""  # the agent's own rule comes first: the cause lies elsewhere
        if answer is None and r.action in _ACTIONS and r.action != 2:
            return f"{_describe(r, config.protocol)} comes first"
        if answer is not None and r.action == FR_ACT_TO_TBL and r.table == answer.table:
            if r.suppress_prefixlen is not None and answer.dst_len <= r.suppress_prefixlen:
                continue  # it refuses such an answer (main_table_first's rule)
            return f"{_describe(r, config.protocol)} comes first"
    return ""


def _describe(r, protocol: int) -> str:
    """A rule record as `ip rule` says it, marked foreign when it is."""
    if r.action == FR_ACT_TO_TBL:
        text = Rule(r.priority, source_network(r.src, r.src_len) if r.src_len else
                    source_network("0.0.0.0/0" if r.family == socket.AF_INET else "::/0"),
                    r.table, r.suppress_prefixlen).describe({})
    else:
        src = f"{r.src}/{r.src_len}" if r.src_len else "all"
        text = f"rule {r.priority}: from {src} {_ACTIONS.get(r.action, r.action)}"
    if r.selectors:
        text += " (and other selectors)"
    return text + ("" if r.protocol == protocol else " (not eni-agent's)")


def _missing_local_routes(nl: Netlink, d: DesiredEni, observed: Observed) -> str:
    """The ENI's addresses the local table has no `local` route for, as one
    line; "" when it has all. Counted first: decoded only when short."""
    index = d.link.index
    on_link = [a for a in observed.addresses | observed.foreign_addresses if a.index == index]
    if nl.local_route_count(index) >= len(on_link):
        return ""
    present = nl.local_route_ips(index)
    missing = sorted(a.ip for a in d.addresses if a.ip not in present)
    if not missing:
        return ""
    return (f"the local table has no route for {_addresses(missing)}: the kernel takes no "
            f"packet addressed to it (`ip route flush table all`?); delete the address from "
            f"{d.link.name} and eni-agent adds it back with its route")


def _addresses(ips) -> str:
    ips = list(ips)
    shown = ", ".join(map(str, ips[:SHOWN]))
    return shown if len(ips) <= SHOWN else f"{shown} and {len(ips) - SHOWN} more"


def _table(table: int) -> str:
    return {MAIN_TABLE: "main", 255: "local", 253: "default"}.get(table, str(table))
