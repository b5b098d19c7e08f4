"""What the kernel should hold, given the metadata and the links present.

Pure: it reads an `Observed` snapshot (for links and table usage) and never
the host. Each listed ENI (except the primary) ends in exactly one `Match`.

Routing scheme, per matched ENI on link L (ifindex i):
  table  = table_base + i       (unique per link; the kernel never reuses an
                                 ifindex while the link exists)
  routes = <vswitch cidr> dev L scope link          table T
           default via <gateway> dev L onlink        table T
  rules  = from <ip> lookup T priority rule_priority, one per ENI address
           from <prefix> lookup T priority rule_priority, one per delegated
                                 prefix (ipv4-prefixes), so traffic from any
                                 address in it leaves through the ENI
and, for an ENI with IPv6 (addresses or delegated prefixes), in the same table:
  routes = <vswitch IPv6 cidr> dev L; fe80::/64 dev L;
           default via <ipv6 gateway> dev L onlink
  rules  = from <ipv6> lookup T priority rule_priority, and from <ipv6 prefix>

and, with `main_table_first` (containers on the host), for each family the
ENI rules use:
  rules  = from <src> lookup T suppress_prefixlength 0  priority rule_priority - 2,
           one per ENI rule: the ENI's own vswitch (and fe80::/64) first;
           from all lookup main suppress_prefixlength 0  priority rule_priority - 1
           so a destination `main` routes more specifically than by its
           default route (a docker0/cni0 bridge, a VPN) is reached from any
           source, an ENI's included, the way `main` says, while the ENI's own
           vswitch is reached through the ENI even when it is the primary's.
           (nm-cloud-setup's split into a subnet table and a default table,
           with one table: a lookup that refuses the default route is the
           subnet table. No second table number to collide with.)

Addresses others put on an ENI's link inside its vswitch get a rule to T too
(followed.py); routes in `main` for ENIs in other vswitches and for the
config's [[routes]] come from main_routes.py.

An ENI the metadata sets aside as invalid (`Metadata.invalid`) is left exactly
as it is: whatever the agent owns on its link is neither added to nor removed
(unless the config ignores it: an ignored ENI is let go of, invalid or not).
With `manage_only`, every NIC not named there is left exactly as it is too,
whatever the agent owns on it from earlier: a CNI (Terway) owns those.
"""

from __future__ import annotations

import enum
import fnmatch
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from typing import NamedTuple

from eni_agent.altnames import cleanup_altnames, desired_altnames
from eni_agent.config import MAX_TABLE, RESERVED_TABLES, Config
from eni_agent.followed import Following, addressless_rules, follow, followed_rules
from eni_agent.main_routes import main_routes
from eni_agent.model import Eni, Metadata
from eni_agent.state import MAIN_TABLE, Address, AltName, Link, Observed, Route, Rule

DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")
DEFAULT_ROUTE6 = IPv6Network("::/0")
# Replies from an ENI's IPv6 address to a link-local peer (neighbour discovery
# with the router, a link-local gateway) must stay on the ENI's link, so the
# ENI's table carries the link-local prefix too.
LINK_LOCAL6 = IPv6Network("fe80::/64")
FROM_ALL = {4: IPv4Network("0.0.0.0/0"), 6: IPv6Network("::/0")}
# Terway's policy rules: `to <pod> lookup main` at 512, `from <pod> lookup <ENI table>` at 2048.
TERWAY_PRIORITIES = frozenset({512, 2048})


class Match(str, enum.Enum):
    """How an ENI ended; the value is its name in reports."""

    MATCHED = "matched"  # a link carries the MAC: configure it
    PENDING = "pending"  # no link with this MAC yet (hotplug may follow)
    IGNORED = "ignored"  # the config says to leave this NIC alone
    AMBIGUOUS = "ambiguous"  # several links carry this MAC
    CONFLICT = "conflict"  # the ENI's table is already used by someone else
    DOWN = "down"  # set down after the agent configured it (an operator's ifdown): left so

    def __str__(self) -> str:
        return self.value


class DesiredEni(NamedTuple):
    eni: Eni
    match: Match
    link: Link | None = None
    table: int | None = None
    reason: str = ""
    addresses: frozenset[Address] = frozenset()
    routes: frozenset[Route] = frozenset()
    rules: frozenset[Rule] = frozenset()
    following: Following = Following()  # addresses others put on the link (followed.py)


class Desired(NamedTuple):
    enis: tuple[DesiredEni, ...] = ()
    addresses: frozenset[Address] = frozenset()
    routes: frozenset[Route] = frozenset()
    rules: frozenset[Rule] = frozenset()
    up_links: frozenset[Link] = frozenset()
    link_mtus: frozenset[tuple[Link, int]] = frozenset()  # config `mtu`: (ENI link, its MTU)
    # Owned state of ENIs that need an operator (ambiguous, conflict, or set
    # aside as invalid by the metadata): neither added to nor removed,
    # whatever else changes.
    frozen: frozenset[Address | Route | Rule] = frozenset()
    notes: tuple[str, ...] = ()  # for the operator: config routes waiting for their ENI...
    # Each configured ENI's id as its NIC's altname (altnames.py); an altname
    # is removed only when it is in `releasable_altnames` and not wanted.
    altnames: frozenset[AltName] = frozenset()
    releasable_altnames: frozenset[AltName] = frozenset()


def table_for(config: Config, ifindex: int) -> int:
    """The ENI route table of the link with this ifindex (see the module docstring)."""
    return config.table_base + ifindex


def desired_state(metadata: Metadata | None, observed: Observed, config: Config) -> Desired:
    """The target state; `metadata=None` means "own nothing" (cleanup)."""
    if metadata is None:
        return Desired(releasable_altnames=cleanup_altnames(observed))
    owned_tables = {r.table for r in observed.routes} | {r.table for r in observed.rules}
    enis = tuple(
        _desired_eni(eni, observed, config, owned_tables) for eni in metadata.secondary_enis
    )
    matched = [d for d in enis if d.match is Match.MATCHED]
    left_alone = _left_alone_indexes(enis, metadata, observed, config)
    frozen = _left_alone(left_alone, observed, config)
    frozen -= addressless_rules(frozen, observed)
    altnames, releasable_altnames = desired_altnames(
        {d.eni.mac: d.eni.eni_id for d in enis}, (d.link for d in matched), observed, left_alone)
    rules = frozenset().union(*(d.rules for d in matched))
    main, notes = main_routes(metadata, [(d.eni, d.link) for d in matched], observed, config)
    return Desired(
        enis=enis,
        addresses=frozenset().union(*(d.addresses for d in matched)),
        routes=frozenset().union(*(d.routes for d in matched)) | main,
        rules=rules | _main_table_first(rules | frozen, config) | _subnet_first(rules, config),
        up_links=frozenset(d.link for d in matched),
        link_mtus=_link_mtus(matched, metadata, observed, config),
        frozen=frozen,
        notes=notes,
        altnames=altnames,
        releasable_altnames=releasable_altnames,
    )


def wanted_mtu(metadata: Metadata, observed: Observed, config: Config) -> int | None:
    """The MTU the config asks for on the ENIs: a number, the primary NIC's
    ("primary"; None while no link carries the primary's MAC), or None (unset)."""
    if config.mtu != "primary":
        return config.mtu
    primary = [link.mtu for link in observed.links
               if link.mac == metadata.primary_mac and link.master is None and link.mtu]
    return primary[0] if len(primary) == 1 else None


def _link_mtus(matched: list[DesiredEni], metadata: Metadata, observed: Observed,
               config: Config) -> frozenset[tuple[Link, int]]:
    mtu = wanted_mtu(metadata, observed, config)
    return frozenset((d.link, mtu) for d in matched if mtu is not None)


def _main_table_first(kept: frozenset, config: Config) -> frozenset[Rule]:
    """`from all lookup main suppress_prefixlength 0` before the ENI rules, for
    each family they are kept in (only there does it change anything, and a
    host without IPv6 would refuse an IPv6 rule)."""
    if not config.main_table_first:
        return frozenset()
    versions = {r.version for r in kept if isinstance(r, Rule) and r.table != MAIN_TABLE}
    return frozenset(Rule(config.main_table_priority, FROM_ALL[v], MAIN_TABLE, 0)
                     for v in versions)


def _subnet_first(rules: frozenset[Rule], config: Config) -> frozenset[Rule]:
    """With `main_table_first`, each ENI source looks its table up once before
    `main`, refusing the default route there (`suppress_prefixlength 0`): its
    own vswitch stays on the ENI even where `main` has a route for it (an ENI
    in the primary's vswitch), as nm-cloud-setup's subnet tables do."""
    if not config.main_table_first:
        return frozenset()
    return frozenset(Rule(config.subnet_rule_priority, r.src, r.table, 0) for r in rules
                     if r.table != MAIN_TABLE and r.suppress_prefixlength is None)


def ignored_reason(mac: str, eni_id: str | None, link_name: str | None, config: Config) -> str:
    """Why the config leaves this ENI alone, or "" (the one place that says it)."""
    named = not config.manage_only or mac in config.manage_only or eni_id in config.manage_only
    return ignored_nic(mac, link_name, config) or ("" if named else "not named in manage_only")


def ignored_nic(mac: str, link_name: str | None, config: Config) -> str:
    """Why ignore_macs or ignore_interfaces leave this NIC alone, or "" (for a
    NIC whose ENI is not known yet, so manage_only cannot be judged)."""
    if mac in config.ignore_macs:
        return "MAC listed in ignore_macs"
    if link_name is not None and any(fnmatch.fnmatchcase(link_name, pattern)
                                     for pattern in config.ignore_interfaces):
        return "name matches ignore_interfaces"
    return ""


def ignored_on_host(eni, observed: Observed, config: Config) -> str:
    """Why the config leaves this ENI (an `Eni` or an invalid one) alone,
    judged by every link carrying its MAC, or ""."""
    names = [link.name for link in observed.links if link.mac == eni.mac] or [None]
    return next((why for why in (ignored_reason(eni.mac, eni.eni_id, name, config)
                                 for name in names) if why), "")


def terway_seen(observed: Observed) -> bool:
    """Terway's policy rules are there: a CNI configures (some of) the ENIs."""
    return bool(observed.foreign_rule_priorities & TERWAY_PRIORITIES)


def host_warnings(observed: Observed, config: Config) -> list[str]:
    """What the operator should hear about the host as a whole."""
    if terway_seen(observed) and not config.manage_only:
        return ["Terway's policy rules (priorities 512, 2048) are present but manage_only is "
                "empty: eni-agent configures every ENI, Terway's too; set manage_only to the "
                "ENIs eni-agent should configure"]
    return []


def _left_alone_indexes(enis: tuple[DesiredEni, ...], metadata: Metadata, observed: Observed,
                        config: Config) -> set[int]:
    """The links of ambiguous, conflict or down ENIs, of ENIs whose metadata
    is invalid, and (with manage_only) of ENIs not named there.

    Such an ENI needs an operator; until then whatever the agent configured
    on it earlier keeps carrying traffic. (A detached ENI, by contrast, has
    no link left, and its state goes.)
    """
    macs = {d.eni.mac for d in enis if d.match in (Match.AMBIGUOUS, Match.CONFLICT, Match.DOWN)}
    indexes = {link.index for link in observed.links if link.mac in macs}
    # An invalid ENI the config ignores is let go of, as any ignored ENI is.
    invalid = {bad.mac for bad in metadata.invalid if not ignored_on_host(bad, observed, config)}
    indexes |= {link.index for link in observed.links if link.mac in invalid}
    if config.manage_only:
        # Only the named ENIs are the agent's to change; the state it may have
        # left on any other NIC (configured before manage_only was set) stays.
        named = set(config.manage_only)
        named |= {e.mac for e in (*metadata.enis, *metadata.invalid) if e.eni_id in named}
        indexes |= {link.index for link in observed.links if link.mac not in named}
    return indexes


def _left_alone(indexes: set[int], observed: Observed,
                config: Config) -> frozenset[Address | Route | Rule]:
    """What the agent owns on the links `_left_alone_indexes` names."""
    if not indexes:
        return frozenset()
    addresses = {a for a in observed.addresses if a.index in indexes}
    routes = {r for r in observed.routes if r.oif in indexes}
    tables = {r.table for r in routes} | {table_for(config, i) for i in indexes}
    rules = {r for r in observed.rules if r.table in tables}
    return frozenset(addresses | routes | rules)


def _desired_eni(eni: Eni, observed: Observed, config: Config, owned_tables: set[int]) -> DesiredEni:
    ignored = ignored_reason(eni.mac, eni.eni_id, None, config)
    if ignored:
        return DesiredEni(eni, Match.IGNORED, reason=ignored)
    candidates = [link for link in observed.links if link.mac == eni.mac]
    # A child stacked on the ENI's NIC (macvlan passthru, VLAN) may share its MAC: not a rival.
    unenslaved = [link for link in candidates if link.master is None and link.parent is None]
    if not candidates:
        return DesiredEni(eni, Match.PENDING, reason="no link with this MAC yet")
    if len(unenslaved) != 1:
        names = ", ".join(sorted(link.name for link in candidates))
        why = (f"several links carry this MAC: {names}" if len(unenslaved) > 1 else
               f"every link with this MAC is enslaved to another device: {names}"
               if any(link.parent is None for link in candidates) else
               f"only links stacked on another carry this MAC: {names}")
        return DesiredEni(eni, Match.AMBIGUOUS, reason=why)
    link = unenslaved[0]
    if not link.initialized:
        # udev renames new NICs; an UP link cannot be renamed (Linux < 6.2), and
        # a name matched against ignore_interfaces must be the final one.
        return DesiredEni(eni, Match.PENDING, link=link,
                          reason=f"waiting for udev to finish with {link.name}")
    ignored = ignored_nic(eni.mac, link.name, config)
    if ignored:
        return DesiredEni(eni, Match.IGNORED, link=link, reason=ignored)
    if not link.up and any(a.index == link.index for a in observed.addresses):
        # The agent brings a new NIC up; one that carries the agent's addresses
        # was configured and then set down by someone (`ifdown eth1`): that is
        # theirs to do, and bringing it up again is theirs too.
        return DesiredEni(eni, Match.DOWN, link=link,
                          reason=f"{link.name} was set down after eni-agent configured it; "
                                 f"left down until it is brought up (ip link set {link.name} up)")

    table = table_for(config, link.index)
    if table > MAX_TABLE or table in RESERVED_TABLES:
        return DesiredEni(eni, Match.CONFLICT, link=link,
                          reason=f"table {table} is out of range; lower table_base")
    if table in observed.named_tables or (
        table in observed.foreign_tables and table not in owned_tables
    ):
        return DesiredEni(eni, Match.CONFLICT, link=link, table=table,
                          reason=f"table {table} is already used by another owner; "
                                 "change table_base")

    addresses, routes, rules = _configured(eni, link.index, table, config.rule_priority)
    following = follow(eni, link, observed, config)
    if following.followed:
        rules |= followed_rules(following, table, config)
    return DesiredEni(eni, Match.MATCHED, link=link, table=table, addresses=addresses,
                      routes=routes, rules=rules, following=following)


@lru_cache(maxsize=1 << 10)
def _configured(eni: Eni, index: int, table: int,
                priority: int) -> tuple[frozenset[Address], frozenset[Route], frozenset[Rule]]:
    """What an ENI's link and table hold (the followed addresses' rules aside):
    built once per ENI, link and table, as a daemon's passes ask for the same
    ones each time (hashing 640 rules' sources anew cost ~1.5 ms a pass at 32
    ENIs x 20 IPs)."""
    addresses = {Address(index, ip, eni.cidr.prefixlen) for ip in eni.ips}
    routes = {Route(table, eni.cidr, index), Route(table, DEFAULT_ROUTE, index, eni.gateway)}
    sources = eni.ips + eni.ipv4_prefixes + eni.ipv6s + eni.ipv6_prefixes
    rules = {Rule(priority, src, table) for src in sources}
    if eni.ipv6_cidr is not None:
        addresses |= {Address(index, ip, eni.ipv6_cidr.prefixlen) for ip in eni.ipv6s}
        routes |= {Route(table, eni.ipv6_cidr, index), Route(table, LINK_LOCAL6, index),
                   Route(table, DEFAULT_ROUTE6, index, eni.ipv6_gateway)}
    return frozenset(addresses), frozenset(routes), frozenset(rules)
