"""When the daemon reconciles, as decisions for a given time.

Pure bookkeeping: the loop says why a reconcile is wanted and when (`now`),
reads `due`, and tells how each pass went. No clock of its own, so root-free
tests state literal times.

  - an event (netlink, the metadata file) is gathered for DEBOUNCE seconds:
    a burst of notifications arrives together and makes one pass; an address
    others put on a managed ENI (keepalived's VIP) is not waited for: the
    pass reads every notification queued when it starts (`Netlink.observe`),
    which gathers the rest of a burst (keepalived adding several VIPs);
  - a due time only ever moves earlier: a later request never postpones it;
  - a failed pass is retried RETRY_MIN doubling to RETRY_MAX (±20%);
  - the apply lock held by another eni-agent: again LOCK_RETRY later;
  - drift repaired FIGHT_REPAIRS times within FIGHT_WINDOW means another
    tool keeps undoing the agent's work: repairs of drift then wait
    FIGHT_GAP after the last pass, doubling with each further repair up to
    FIGHT_GAP_MAX; FIGHT_QUIET seconds past the gap without a repair to
    make end it.
"""

from __future__ import annotations

import collections
import random
from typing import Callable, NamedTuple

from eni_agent.followed import FOREIGN_ADDRESS_EVENT
from eni_agent.relevance import DRIFT_REASONS

DEBOUNCE = 0.002  # seconds to gather a burst of events (they arrive together) into one pass
RETRY_MIN, RETRY_MAX = 0.5, 30.0
LOCK_RETRY = 0.25
UDEV_RECHECK = 0.1
FIGHT_WINDOW, FIGHT_REPAIRS = 10.0, 10
FIGHT_GAP, FIGHT_GAP_MAX, FIGHT_QUIET = 1.0, 64.0, 30.0


def retry_jitter() -> float:
    return random.uniform(0.8, 1.2)


class Fight(NamedTuple):
    """How a drift repair changed the back-off (for the log)."""

    began: bool  # this repair started it
    gap: float  # repairs of drift wait this long after the last pass (0: none)
    repairs: int  # drift repairs since the fight began


class RepairBackoff:
    """Another tool keeps undoing the agent's changes: slow the repairs down,
    exponentially and bounded; back to at once when the tool stops."""

    def __init__(self) -> None:
        self.recent: collections.deque[float] = collections.deque()
        self.gap = 0.0
        self.last_repair = float("-inf")
        self.repairs = 0

    def repaired(self, now: float) -> Fight:
        """A pass triggered by drift alone changed something."""
        self.ended(now)
        self.last_repair = now
        self.recent.append(now)
        while self.recent and self.recent[0] < now - FIGHT_WINDOW:
            self.recent.popleft()
        began = False
        if self.gap:
            self.gap = min(FIGHT_GAP_MAX, self.gap * 2)
            self.repairs += 1
        elif len(self.recent) >= FIGHT_REPAIRS:
            self.gap, self.repairs, began = FIGHT_GAP, len(self.recent), True
        return Fight(began, self.gap, self.repairs)

    def ended(self, now: float) -> bool:
        """True once, when a fight is over (no repair for gap + FIGHT_QUIET)."""
        if self.gap and now - self.last_repair > self.gap + FIGHT_QUIET:
            self.gap, self.repairs = 0.0, 0
            self.recent.clear()
            return True
        return False


class ReconcileSchedule:
    def __init__(self, now: float, resync_interval: float,
                 jitter: Callable[[], float] = retry_jitter):
        self.resync_interval = resync_interval
        self.jitter = jitter
        self.reasons: set[str] = {"start"}
        self.due: float | None = now
        self.next_resync = now + resync_interval
        self.last_pass = float("-inf")
        self.failures = 0
        self.backoff = RepairBackoff()

    def wake_at(self) -> float:
        return self.next_resync if self.due is None else min(self.due, self.next_resync)

    def request(self, now: float, delay: float, reason: str) -> None:
        """A pass `delay` seconds from now, or earlier if one is due earlier."""
        self.reasons.add(reason)
        at = now + delay
        if reason in DRIFT_REASONS and self.backoff.gap:
            at = max(at, self.last_pass + self.backoff.gap)
        if self.due is None or at < self.due:
            self.due = at

    def event(self, now: float, reason: str) -> None:
        """Something changed: a pass once the rest of its burst has arrived
        (a followed address's at once: see the module docstring)."""
        self.request(now, 0.0 if reason == FOREIGN_ADDRESS_EVENT else DEBOUNCE, reason)

    def retry(self, now: float, why: str) -> float:
        """A pass failed or did not converge: the next one, backing off."""
        delay = min(RETRY_MAX, RETRY_MIN * 2 ** self.failures) * self.jitter()
        self.failures += 1
        self.request(now, delay, f"retry: {why}")
        return delay

    def lock_held(self, now: float) -> None:
        self.request(now, LOCK_RETRY, "lock held")

    def udev_pending(self, now: float) -> None:
        """udev writes no netlink event when it is done: look again shortly."""
        self.request(now, UDEV_RECHECK, "udev check of a new NIC")

    def resync_due(self, now: float) -> bool:
        return now >= self.next_resync

    def begin(self, now: float) -> frozenset[str] | None:
        """The reasons for a pass if one is due at `now` (and its start noted)."""
        if self.due is None or now < self.due:
            return None
        reasons = frozenset(self.reasons)
        self.reasons.clear()
        self.due = None
        self.last_pass = now
        self.next_resync = now + self.resync_interval
        return reasons

    def converged(self) -> None:
        self.failures = 0

    def drift_repaired(self, now: float, reasons: frozenset[str], changed: bool) -> Fight | None:
        """After a pass: the back-off's state if this pass repaired drift."""
        if changed and reasons <= DRIFT_REASONS:
            return self.backoff.repaired(now)
        return None
