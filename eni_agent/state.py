"""Kernel state as plain values: links, addresses, routes, rules.

`observe` turns netlink messages into these; `desired` builds the same types
from the metadata; `plan` compares them as sets. Each value is hashable and
compares by what identifies it in the kernel.

They are named tuples: thousands are built, hashed and compared per
reconcile, which tuples do in C, and a one-shot run creates their classes
in a fraction of a dataclass's time. Unlike plain tuples they are equal only
to values of their own kind: Address(3, ip, 24) is not Rule(3, ip, 24).
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import NamedTuple, Union

IP = Union[IPv4Address, IPv6Address]
Network = Union[IPv4Network, IPv6Network]


def _same_kind_eq(self, other) -> bool:
    return type(self) is type(other) and tuple.__eq__(self, other)


def _same_kind_ne(self, other) -> bool:
    return not _same_kind_eq(self, other)


def _lt_by_sort_key(self, other) -> bool:
    """Order by `sort_key()`, which works across address families."""
    if type(other) is not type(self):
        return NotImplemented
    return self.sort_key() < other.sort_key()


class Link(NamedTuple):
    index: int
    name: str
    mac: str  # lower-case
    up: bool
    master: int | None = None  # set when the link is enslaved (bond, bridge, failover)
    # Without promote_secondaries, deleting an IPv4 address makes the kernel
    # delete every other address of its subnet on the link, a user's included.
    promote_secondaries: bool = True
    # udev has finished with the link (named it). Until then the agent must
    # not set it up: before Linux 6.2 an UP link cannot be renamed.
    initialized: bool = True
    # Set on a link stacked on another (a macvlan, VLAN, ipvlan or macvtap):
    # the index of the link beneath. Such a child may carry its parent's MAC,
    # but the ENI is the parent, the link with the device behind it.
    parent: int | None = None
    mtu: int = 0  # 0: not known

    def __str__(self) -> str:
        return self.name

    __eq__, __ne__, __hash__ = _same_kind_eq, _same_kind_ne, tuple.__hash__


def ip_key(ip: IP | Network | None) -> tuple:
    """Sort key across families (ipaddress refuses to compare v4 with v6)."""
    if ip is None:
        return (0,)
    if isinstance(ip, (IPv4Network, IPv6Network)):
        return (ip.version, int(ip.network_address), ip.prefixlen)
    return (ip.version, int(ip))


class Address(NamedTuple):
    index: int  # ifindex of the link holding it
    ip: IP
    prefixlen: int
    # preferred_lft 0: never picked as the source of a new connection, yet it
    # answers and a socket bound to it works (an IPv6 secondary IP of the
    # primary NIC must not become the source of the primary's connections).
    deprecated: bool = False

    @property
    def version(self) -> int:
        return self.ip.version

    def sort_key(self) -> tuple:
        return (self.index, ip_key(self.ip), self.prefixlen)

    def describe(self, names: dict[int, str]) -> str:
        text = f"address {self.ip}/{self.prefixlen} dev {names.get(self.index, f'#{self.index}')}"
        return text + " preferred_lft 0" if self.deprecated else text

    __eq__, __ne__, __hash__ = _same_kind_eq, _same_kind_ne, tuple.__hash__
    __lt__ = _lt_by_sort_key


MAIN_TABLE = 254


class Route(NamedTuple):
    table: int
    dst: Network
    oif: int
    gateway: IP | None = None  # None: an on-link (scope link) subnet route
    src: IP | None = None  # the preferred source (`src`), set on the agent's routes in `main`

    @property
    def version(self) -> int:
        return self.dst.version

    @property
    def key(self) -> tuple[int, Network]:
        """What the kernel keys a route on within one table (we never set metrics)."""
        return (self.table, self.dst)

    def sort_key(self) -> tuple:
        # Within a table, more specific routes first: the on-link subnet route
        # goes in before the default route through the gateway it reaches.
        return (self.table, self.version, -self.dst.prefixlen, ip_key(self.dst), self.oif,
                ip_key(self.gateway), ip_key(self.src))

    def describe(self, names: dict[int, str]) -> str:
        dst = "default" if self.dst.prefixlen == 0 else str(self.dst)
        via = f" via {self.gateway}" if self.gateway else ""
        src = f" src {self.src}" if self.src else ""
        table = "main" if self.table == MAIN_TABLE else self.table
        return f"route {dst}{via} dev {names.get(self.oif, f'#{self.oif}')}{src} table {table}"

    __eq__, __ne__, __hash__ = _same_kind_eq, _same_kind_ne, tuple.__hash__
    __lt__ = _lt_by_sort_key


@lru_cache(maxsize=1 << 16)
def source_network(ip, prefixlen: int | None = None) -> Network:
    """The network of a rule's source: an address (a host: /32 or /128), or an
    address and a prefix length. One object per source, however often the
    kernel is observed (a reconcile builds every rule twice; parsing each
    source from text again cost a daemon repair ~20 ms at 32 ENIs x 20 IPs).
    A host's is the same object whether the length is given (a kernel rule)
    or not (a desired one): the plan's comparisons then stop at identity."""
    if isinstance(ip, str):
        return ip_network(ip) if prefixlen is None else ip_network((ip, prefixlen), strict=False)
    if prefixlen == ip.max_prefixlen:
        return source_network(ip)
    network = IPv4Network if ip.version == 4 else IPv6Network
    length = ip.max_prefixlen if prefixlen is None else prefixlen
    return network((int(ip), length), strict=False)


class _RuleFields(NamedTuple):
    priority: int
    src: Network  # the source: a prefix, or one address as a /32 or /128; /0: "from all"
    table: int
    # `suppress_prefixlength N`: the lookup's answer is refused when its
    # route's prefix is N bits or shorter (0: a default route is refused)
    suppress_prefixlength: int | None = None



class Rule(_RuleFields):
    """`from <src> lookup <table> priority <priority>`; `src` may be given as an
    address (a host rule) or a network (a delegated prefix), and is kept as a
    network either way. A /0 source is "from all" (of its family), as in
    `from all lookup main suppress_prefixlength 0`."""

    __slots__ = ()

    def __new__(cls, priority: int, src, table: int,
                suppress_prefixlength: int | None = None) -> Rule:
        if not isinstance(src, (IPv4Network, IPv6Network)):
            src = source_network(src)
        return tuple.__new__(cls, (priority, src, table, suppress_prefixlength))

    @property
    def version(self) -> int:
        return self.src.version

    def sort_key(self) -> tuple:
        return (self.priority, ip_key(self.src), self.table,
                -1 if self.suppress_prefixlength is None else self.suppress_prefixlength)

    def describe(self, names: dict[int, str]) -> str:
        src = self.src
        if src.prefixlen == 0:
            shown = "all" if src.version == 4 else "all (IPv6)"
        elif src.prefixlen == src.max_prefixlen:
            shown = src.network_address
        else:
            shown = src
        table = "main" if self.table == MAIN_TABLE else self.table
        text = f"rule {self.priority}: from {shown} lookup {table}"
        if self.suppress_prefixlength is not None:
            text += f" suppress_prefixlength {self.suppress_prefixlength}"
        return text

    __eq__, __ne__, __hash__ = _same_kind_eq, _same_kind_ne, tuple.__hash__
    __lt__ = _lt_by_sort_key


class AltName(NamedTuple):
    """An alternative name of a link (`ip link property add dev eth1 altname
    eni-...`): the agent gives each ENI's NIC its ENI id, so people can type it."""

    index: int
    name: str

    def sort_key(self) -> tuple:
        return (self.index, self.name)

    def describe(self, names: dict[int, str]) -> str:
        return f"altname {self.name} dev {names.get(self.index, f'#{self.index}')}"

    __eq__, __ne__, __hash__ = _same_kind_eq, _same_kind_ne, tuple.__hash__
    __lt__ = _lt_by_sort_key


class Observed(NamedTuple):
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
    foreign_rule_priorities: frozenset[int] = frozenset()  # of unmarked rules (Terway's: 512, 2048)
    # Destinations of unmarked routes in `main`, as (version, network address,
    # prefix length): the agent never adds a route of its own beside them.
    foreign_main_destinations: frozenset[tuple] = frozenset()
    # The kernel keeps an address's protocol mark (Linux 5.18+). Without it the
    # agent knows its addresses by its rule and routes beside them (ownership.py).
    address_marks: bool = True
    # Links without a MAC (lo, tunnels, WireGuard), by index: only to name
    # them, as holders of an address an ENI must not take (taken.py).
    macless_names: tuple[tuple[int, str], ...] = ()
    # Every link's altnames, whoever added them: an altname carries no mark, so
    # the plan removes only the ENI ids the metadata gave for a NIC.
    altnames: frozenset[AltName] = frozenset()
    altnames_supported: bool = True  # the kernel takes altnames (Linux 5.5+)

    def link_names(self) -> dict[int, str]:
        return {**dict(self.macless_names), **{link.index: link.name for link in self.links}}
