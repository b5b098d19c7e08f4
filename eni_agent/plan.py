"""plan(desired, observed) -> the ordered changes that make one into the other.

A pure function over values: set differences, then an order the kernel
accepts. Only objects in `observed.addresses/routes/rules` (the agent's own,
marked ones) can ever appear in a removal; foreign objects are only avoided.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from eni_agent.desired import Desired
from eni_agent.state import Address, AltName, Link, Observed, Route, Rule


class Action(str, enum.Enum):
    LINK_UP = "up"
    SET_MTU = "mtu"
    KEEP_SECONDARIES = "keep-secondaries"
    ADD = "add"
    REPLACE = "replace"
    REMOVE = "remove"

    def __str__(self) -> str:  # "add address ...": the word, also on Python 3.9-3.10
        return self.value


class Outcome(str, enum.Enum):
    """What became of a change sent to the kernel (netlink.outcomes decides)."""

    DONE = "done"
    ALREADY = "already"  # present already (add) or gone already (remove)
    LINK_GONE = "link-gone"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class Change(NamedTuple):
    action: Action
    target: Link | Address | Route | Rule | AltName

    def describe(self, names: dict[int, str]) -> str:
        if self.action is Action.KEEP_SECONDARIES:
            return f"set promote_secondaries on {self.target.name}"
        if self.action is Action.SET_MTU:
            return f"set mtu {self.target.mtu} on {self.target.name}"
        if isinstance(self.target, Link):
            return f"set link {self.target.name} up"
        return f"{self.action} {self.target.describe(names)}"

    @property
    def ifindex(self) -> int | None:
        """The link this change is about, when it names one."""
        target = self.target
        if isinstance(target, (Link, Address, AltName)):
            return target.index
        if isinstance(target, Route):
            return target.oif
        return None


def _ordered(values) -> list:
    """Addresses, routes or rules in a stable order; each key computed once
    (sorting by __lt__ would recompute both keys per comparison)."""
    return sorted(values, key=_sort_key)


def _sort_key(value):
    return value.sort_key()


def plan(desired: Desired, observed: Observed) -> list[Change]:
    """promote_secondaries where addresses will change, then removals (rules,
    routes, addresses), then link up, addresses,
    routes (subnet before default) and rules, so a rule never points at a
    table that is not filled yet; altnames (names for people) last.

    Where the kernel drops address marks (before Linux 5.18), an address is
    known to be the agent's only by its rule and a route of its table beside
    it, so at no point may an address of the agent's be without them (an
    interrupted run would leave addresses `cleanup` cannot see): addresses go
    first, and come after the rules and the on-link routes (a route via a
    gateway needs an IPv4 address on its link, so those still come after).
    """
    if not observed.address_marks:
        return _plan_without_address_marks(desired, observed)
    return (_keep_secondaries(desired, observed) + _removed_rules(desired, observed)
            + _removed_routes(desired, observed) + _removed_addresses(desired, observed)
            + _link_mtus(desired) + _links_up(desired) + _added_addresses(desired, observed)
            + _added_routes(desired, observed) + _added_rules(desired, observed)
            + _altnames(desired, observed))


def _plan_without_address_marks(desired: Desired, observed: Observed) -> list[Change]:
    routes = _added_routes(desired, observed)
    on_link = [c for c in routes if c.target.gateway is None]
    via_gateway = [c for c in routes if c.target.gateway is not None]
    return (_keep_secondaries(desired, observed) + _removed_addresses(desired, observed)
            + _removed_rules(desired, observed) + _removed_routes(desired, observed)
            + _link_mtus(desired) + _links_up(desired) + on_link + _added_rules(desired, observed)
            + _added_addresses(desired, observed) + via_gateway + _altnames(desired, observed))


def _removed_address_set(desired: Desired, observed: Observed) -> list:
    return _ordered(observed.addresses - desired.addresses - desired.frozen)


def _keep_secondaries(desired: Desired, observed: Observed) -> list[Change]:
    """Before any address goes, make sure removing it cannot take others along."""
    touched = {a.index for a in _removed_address_set(desired, observed) if a.version == 4}
    touched |= {link.index for link in desired.up_links}
    return [Change(Action.KEEP_SECONDARIES, link) for link in observed.links
            if link.index in touched and not link.promote_secondaries]


def _removed_rules(desired: Desired, observed: Observed) -> list[Change]:
    return [Change(Action.REMOVE, rule)
            for rule in _ordered(observed.rules - desired.rules - desired.frozen)]


def _removed_routes(desired: Desired, observed: Observed) -> list[Change]:
    desired_route_keys = {route.key for route in desired.routes}
    return [Change(Action.REMOVE, route)
            for route in _ordered(observed.routes - desired.routes - desired.frozen)
            if route.key not in desired_route_keys]


def _removed_addresses(desired: Desired, observed: Observed) -> list[Change]:
    return [Change(Action.REMOVE, address)
            for address in _removed_address_set(desired, observed)]


def _links_up(desired: Desired) -> list[Change]:
    return [Change(Action.LINK_UP, link) for link in sorted(desired.up_links) if not link.up]


def _link_mtus(desired: Desired) -> list[Change]:
    """The MTU the config asks for, on the ENIs' links only (never the primary's)."""
    return [Change(Action.SET_MTU, link._replace(mtu=mtu))
            for link, mtu in sorted(desired.link_mtus) if link.mtu != mtu]


def _added_addresses(desired: Desired, observed: Observed) -> list[Change]:
    held_by_others = {(a.index, a.ip) for a in observed.foreign_addresses}
    return [Change(Action.ADD, address)
            for address in _ordered(desired.addresses - observed.addresses)
            if (address.index, address.ip) not in held_by_others]


def _added_routes(desired: Desired, observed: Observed) -> list[Change]:
    observed_route_keys = {route.key for route in observed.routes}
    return [Change(Action.REPLACE if route.key in observed_route_keys else Action.ADD, route)
            for route in _ordered(desired.routes - observed.routes)]


def _added_rules(desired: Desired, observed: Observed) -> list[Change]:
    return [Change(Action.ADD, rule) for rule in _ordered(desired.rules - observed.rules)]


def _altnames(desired: Desired, observed: Observed) -> list[Change]:
    """An altname carries no mark: only one the desired state says is the
    agent's to remove (an ENI id the metadata gave for that NIC) ever goes."""
    removed = (observed.altnames & desired.releasable_altnames) - desired.altnames
    return ([Change(Action.REMOVE, a) for a in _ordered(removed)]
            + [Change(Action.ADD, a) for a in _ordered(desired.altnames - observed.altnames)])
