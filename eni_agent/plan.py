"""plan(desired, observed) -> the ordered changes that make one into the other.

A pure function over values: set differences, then an order the kernel
accepts. Only objects in `observed.addresses/routes/rules` (the agent's own,
marked ones) can ever appear in a removal; foreign objects are only avoided.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from eni_agent.desired import Desired
from eni_agent.state import Address, Link, Observed, Route, Rule


class Action(str, enum.Enum):
    LINK_UP = "up"
    KEEP_SECONDARIES = "keep-secondaries"
    ADD = "add"
    REPLACE = "replace"
    REMOVE = "remove"

    def __str__(self) -> str:  # "add address ...": the word, also on Python 3.9-3.10
        return self.value


class Change(NamedTuple):
    action: Action
    target: Link | Address | Route | Rule

    def describe(self, names: dict[int, str]) -> str:
        if self.action is Action.KEEP_SECONDARIES:
            return f"set promote_secondaries on {self.target.name}"
        if isinstance(self.target, Link):
            return f"set link {self.target.name} up"
        return f"{self.action} {self.target.describe(names)}"

    @property
    def ifindex(self) -> int | None:
        """The link this change is about, when it names one."""
        target = self.target
        if isinstance(target, (Link, Address)):
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
    routes (subnet before default) and rules last, so a rule never points at a
    table that is not filled yet.
    """
    changes: list[Change] = []

    # Before any address goes, make sure removing it cannot take others along.
    removed_addresses = _ordered(observed.addresses - desired.addresses - desired.frozen)
    touched = {a.index for a in removed_addresses if a.version == 4}
    touched |= {link.index for link in desired.up_links}
    for link in observed.links:
        if link.index in touched and not link.promote_secondaries:
            changes.append(Change(Action.KEEP_SECONDARIES, link))

    for rule in _ordered(observed.rules - desired.rules - desired.frozen):
        changes.append(Change(Action.REMOVE, rule))

    desired_route_keys = {route.key for route in desired.routes}
    for route in _ordered(observed.routes - desired.routes - desired.frozen):
        if route.key not in desired_route_keys:
            changes.append(Change(Action.REMOVE, route))

    for address in removed_addresses:
        changes.append(Change(Action.REMOVE, address))

    for link in sorted(desired.up_links):
        if not link.up:
            changes.append(Change(Action.LINK_UP, link))

    held_by_others = {(a.index, a.ip) for a in observed.foreign_addresses}
    for address in _ordered(desired.addresses - observed.addresses):
        if (address.index, address.ip) not in held_by_others:
            changes.append(Change(Action.ADD, address))

    observed_route_keys = {route.key for route in observed.routes}
    for route in _ordered(desired.routes - observed.routes):
        action = Action.REPLACE if route.key in observed_route_keys else Action.ADD
        changes.append(Change(action, route))

    for rule in _ordered(desired.rules - observed.rules):
        changes.append(Change(Action.ADD, rule))

    return changes


