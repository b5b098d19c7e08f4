"""Kernel state as plain values: links, addresses, routes, rules.

`observe` turns netlink messages into these; `desired` builds the same types
from the metadata; `plan` compares them as sets. Each value is hashable and
compares by what identifies it in the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network


@dataclass(frozen=True, order=True)
class Link:
    index: int
    name: str
    mac: str  # lower-case
    up: bool
    master: int | None = None  # set when the link is enslaved (bond, bridge, failover)
    # Without promote_secondaries, deleting an IPv4 address makes the kernel
    # delete every other address of its subnet on the link, a user's included.
    promote_secondaries: bool = True

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, order=True)
class Address:
    index: int  # ifindex of the link holding it
    ip: IPv4Address
    prefixlen: int

    def describe(self, names: dict[int, str]) -> str:
        return f"address {self.ip}/{self.prefixlen} dev {names.get(self.index, f'#{self.index}')}"


@dataclass(frozen=True, order=True)
class Route:
    table: int
    dst: IPv4Network
    oif: int
    gateway: IPv4Address | None = None  # None: an on-link (scope link) subnet route

    @property
    def key(self) -> tuple[int, IPv4Network]:
        """What the kernel keys a route on within one table (we never set metrics)."""
        return (self.table, self.dst)

    def describe(self, names: dict[int, str]) -> str:
        dst = "default" if self.dst.prefixlen == 0 else str(self.dst)
        via = f" via {self.gateway}" if self.gateway else ""
        return f"route {dst}{via} dev {names.get(self.oif, f'#{self.oif}')} table {self.table}"


@dataclass(frozen=True, order=True)
class Rule:
    priority: int
    src: IPv4Address
    table: int

    def describe(self, names: dict[int, str]) -> str:
        return f"rule {self.priority}: from {self.src} lookup {self.table}"


@dataclass(frozen=True)
class Observed:
    """What the kernel holds now, as far as the agent cares.

    `addresses`, `routes` and `rules` are the agent's own (carrying its
    protocol mark): the only things it may ever delete. The `foreign_*` fields
    are everybody else's, kept so the plan can avoid them.
    """

    links: tuple[Link, ...] = ()
    addresses: frozenset[Address] = frozenset()
    routes: frozenset[Route] = frozenset()
    rules: frozenset[Rule] = frozenset()
    foreign_addresses: frozenset[Address] = frozenset()
    foreign_tables: frozenset[int] = frozenset()  # tables used by unmarked routes or rules
    named_tables: frozenset[int] = frozenset()  # from rt_tables files
    foreign_default_oifs: frozenset[int] = frozenset()  # links with someone's main default route

    def link_names(self) -> dict[int, str]:
        return {link.index: link.name for link in self.links}
