"""A fake netlink adapter for the engine's unit tests: observe() returns sets
held in memory, apply() changes them (or refuses what the test says)."""

from __future__ import annotations

from typing import Callable

from eni_agent.netlink.outcomes import Result  # pure values: no kernel, no pyroute2
from eni_agent.plan import Action, Change, Outcome
from eni_agent.state import Address, AltName, Link, Observed, Route, Rule

from .kernel_answers import KernelAnswers
from .observed import IP11


class FakeNetlink(KernelAnswers):
    """observe() returns the in-memory state; apply() changes it.

    `fail(change)` returns an error text to refuse that change (the state is
    left as it was), or "" to apply it.
    """

    def __init__(self, observed: Observed, fail: Callable[[Change], str] = lambda c: "",
                 outcome: Callable[[Change], Outcome | None] = lambda c: None):
        self.state = observed
        self.fail = fail
        self.outcome = outcome  # force an outcome (the state is then left as it was)
        self.applied: list[list[Change]] = []
        self.observe_calls = 0

    def observe(self) -> Observed:
        self.observe_calls += 1
        return self.state

    def apply(self, changes: list[Change]) -> list[Result]:
        self.applied.append(list(changes))
        results = []
        for change in changes:
            error, forced = self.fail(change), self.outcome(change)
            if forced is not None:
                results.append(Result(change, forced))
            elif error:
                results.append(Result(change, Outcome.FAILED, error))
            else:
                self._apply(change)
                results.append(Result(change, Outcome.DONE))
        return results

    def _apply(self, change: Change) -> None:
        s, target = self.state, change.target
        if isinstance(target, Link):
            field = "up" if change.action is Action.LINK_UP else "promote_secondaries"
            links = tuple(link._replace(**{field: True}) if link.index == target.index else link
                          for link in s.links)
            self.state = s._replace(links=links)
            return
        name = {Address: "addresses", Route: "routes", Rule: "rules",
                AltName: "altnames"}[type(target)]
        pool = set(getattr(s, name))
        if change.action is Action.REMOVE:
            pool.discard(target)
        else:
            if change.action is Action.REPLACE:
                pool = {r for r in pool if r.key != target.key}
            pool.add(target)
        self.state = s._replace(**{name: frozenset(pool)})


def fail_rule_adds(change: Change) -> str:
    """A ``fail`` for FakeNetlink: adding the rule of 10.0.1.11 is refused (EPERM)."""
    if isinstance(change.target, Rule) and change.action is Action.ADD \
            and change.target.src.prefixlen == 32 and IP11 in change.target.src:
        return "Operation not permitted (EPERM)"
    return ""
