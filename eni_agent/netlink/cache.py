"""The kernel's records as last read, kept current by notifications.

Pure bookkeeping, no socket: `Records` holds the dumped links, addresses,
routes and rules by what identifies each in the kernel; `note()` applies one
notification. Where the kernel changes things without a notification (IPv4
routes of a link that goes down, goes away or loses its last IPv4 address),
the link lands in `stale_links`, whose addresses and routes the session reads
again before it is next observed.
"""

from __future__ import annotations

from typing import Dict, Iterable, Set

from eni_agent.netlink.outcomes import KINDS


def key(kind: str, record) -> object:
    """What identifies a record in the kernel, for notifications to update it."""
    if kind == "links":
        return record.index
    if kind == "addresses":
        return (record.index, record.ip, record.prefixlen)
    return record


def _route_slot(record) -> tuple:
    """What a replacing route takes the place of (the agent sets no metrics)."""
    return (record.family, record.table, record.dst, record.dst_len)


class Records:
    def __init__(self):
        self.by_kind: Dict[str, dict] = {kind: {} for kind in KINDS}
        self.stale_links: Set[int] = set()
        self.generation = 0  # counts what changed the records (answers read before are stale)

    def values(self, kind: str) -> Iterable:
        return self.by_kind[kind].values()

    def load(self, kind: str, records: Iterable) -> None:
        """All records of a kind, as just dumped."""
        self.by_kind[kind] = {key(kind, r): r for r in records}
        self.generation += 1

    def load_link(self, index: int, addresses: Iterable, routes: Iterable) -> None:
        """One link's addresses and routes, as just dumped."""
        self.generation += 1
        for kind, mine, fresh in (("addresses", lambda a: a.index == index, addresses),
                                  ("routes", lambda r: r.oif == index, routes)):
            records = self.by_kind[kind]
            for k in [k for k, r in records.items() if mine(r)]:
                del records[k]
            records.update((key(kind, r), r) for r in fresh)
        self.stale_links.discard(index)

    def note(self, n) -> None:
        """Apply one notification (`events.Notification`)."""
        self.generation += 1
        records = self.by_kind[n.kind]
        record = n.record
        if n.kind == "links":
            was = records.get(record.index)
            if n.deleted or (was is not None and was.up and not record.up):
                # The kernel drops IPv4 routes through a link that goes down or
                # away without telling; a link going away takes its addresses.
                self.stale_links.add(record.index)
        elif n.kind == "addresses" and n.deleted and record.ip is not None \
                and record.ip.version == 4:
            others = [a for a in records.values() if a.index == record.index
                      and a.ip is not None and a.ip.version == 4 and a.ip != record.ip]
            if not others:
                self.stale_links.add(record.index)  # its last IPv4 address: routes go too
        elif n.kind == "routes" and n.replace and not n.deleted:
            slot = _route_slot(record)
            for k in [k for k, r in records.items() if _route_slot(r) == slot]:
                del records[k]
        k = key(n.kind, record)
        if n.deleted:
            records.pop(k, None)
        else:
            records[k] = record
