"""The kernel's answers to the verification's questions, worked out from a
fake adapter's in-memory state (`self.state`, an `Observed`): a lookup takes
the first rule whose source matches, then that table's longest matching
route; without one, the primary's default route in main answers. Each
address on a link has its local route, unless listed in `self.no_local_route`.
"""

from __future__ import annotations

from eni_agent.netlink.messages import LookupRecord

MAIN_DEFAULT = LookupRecord(0, 1, 254, 2, None, 0, 3)  # via eth0 (index 2)


class KernelAnswers:
    no_local_route: frozenset = frozenset()

    def rule_records(self) -> list:
        return []

    def route_lookups(self, questions: list) -> list:
        return [self._lookup(src, dst) for src, dst in questions]

    def _lookup(self, src, dst) -> LookupRecord:
        for rule in sorted(self.state.rules):
            if src is None or src not in rule.src:
                continue
            routes = [r for r in self.state.routes if r.table == rule.table and dst in r.dst]
            if routes:
                best = max(routes, key=lambda r: r.dst.prefixlen)
                return LookupRecord(0, 1, best.table, best.oif, best.gateway,
                                    best.dst.prefixlen, 234)
        return MAIN_DEFAULT

    def _on_link(self, index: int) -> list:
        return [a.ip for a in self.state.addresses | self.state.foreign_addresses
                if a.index == index and a.ip not in self.no_local_route]

    def local_route_count(self, index: int) -> int:
        return len(self._on_link(index))

    def local_route_ips(self, index: int) -> frozenset:
        return frozenset(self._on_link(index))

    def forget_answers(self) -> None:
        pass


class ObservedKernel(KernelAnswers):
    """A kernel that only holds `state` (for `preview`: nothing is applied)."""

    def __init__(self, state):
        self.state = state

    def observe(self):
        return self.state
