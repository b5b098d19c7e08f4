"""When the daemon asks the metadata service: its schedules, as decisions.

Pure bookkeeping with no thread and no clock of its own. The loop tells the
feed what happened, with the time (a NIC appeared, a fetch started, answered,
failed), and asks `next_action(now)`: fetch now, abandon the fetch in flight,
or wait until `wake_at()`. Root-free tests drive it with literal times.

The schedules (docs/daemon-behaviour.md has them with their values):
  - the poll: `interval` seconds (±10%) after each answer;
  - after a failure: RETRY_FIRST doubling to FETCH_RETRY;
  - a burst for a NIC that may be an ENI and that the listing does not name
    (an ENI attached or moved here, usually before the service lists it):
    BURST_FIRST doubling to BURST_MAX after each answer, until the listing
    names it or BURST_FOR seconds pass; a NIC that goes and comes back
    resumes its burst, and begins a new one at most BURST_AGAIN after the last;
  - a fetch in flight FETCH_ABANDON seconds is abandoned, the next started;
  - an ENI an answer leaves out while its NIC is attached is kept, and asked
    about again FETCH_GAP later: only a second answer agreeing drops it;
  - a fetch asked for while one runs follows it at once (the running one may
    have asked before the change it should see);
  - whatever asks, at most FETCH_BUDGET fetches start in any BUDGET_WINDOW.
"""

from __future__ import annotations

import collections
import enum
import random
from typing import Callable, NamedTuple

from eni_agent.model import Metadata

FETCH_GAP = 2.0  # a fetch not asked for urgently waits this long after the last start
FETCH_RETRY = 10.0  # after failures, the retry delay stops doubling here
RETRY_FIRST = 0.5
BURST_FIRST, BURST_MAX, BURST_FOR = 0.25, 1.0, 60.0
BURST_AGAIN = 300.0  # a NIC's burst begins at most this often (a flapping NIC)
FETCH_ABANDON = 15.0  # a fetch still running this long after its start is abandoned
FETCH_BUDGET, BUDGET_WINDOW = 75, 60.0  # one full burst plus the poll fit in a window


class Action(enum.Enum):
    WAIT = "wait"
    FETCH = "fetch"
    ABANDON = "abandon"


class Fetched(NamedTuple):
    metadata: Metadata  # the answer, with the ENIs `held` added back
    held: tuple  # listed ENIs the answer left out while their NIC is attached
    why: str  # what asked for this fetch, for the reconcile's log line


def poll_jitter() -> float:
    return random.uniform(0.9, 1.1)


class MetadataFeed:
    def __init__(self, interval: float, jitter: Callable[[], float] = poll_jitter):
        self.interval = interval
        self.jitter = jitter
        self.next_fetch_at: float | None = None
        self.in_flight_since: float | None = None
        self.last_start = float("-inf")
        self.starts: collections.deque[float] = collections.deque()  # within BUDGET_WINDOW
        self.again = False  # asked for while a fetch was running
        self.reasons: set[str] = set()
        self.failures = 0
        # NICs that may be ENIs the listing does not name, and since when:
        # fetched for in a burst until listed (or BURST_FOR has passed).
        self.unknown: dict[str, float] = {}
        self.burst_delay = BURST_FIRST
        self.past_bursts: dict[str, float] = {}  # NICs gone or given up on: when each began
        # Listed ENIs an answer left out while their NIC stayed attached.
        self.unlisted_once: frozenset[str] = frozenset()

    # -- what the loop asks ------------------------------------------------------

    def next_action(self, now: float) -> Action:
        if self.in_flight_since is not None:
            if now - self.in_flight_since >= FETCH_ABANDON:
                return Action.ABANDON
            return Action.WAIT
        if self.next_fetch_at is not None and now >= self.next_fetch_at:
            return Action.FETCH if self._budget_left(now) else Action.WAIT
        return Action.WAIT

    def wake_at(self) -> float | None:
        """The earliest time `next_action` may say something new (None: only
        when told of something)."""
        if self.in_flight_since is not None:
            return self.in_flight_since + FETCH_ABANDON
        if self.next_fetch_at is None:
            return None
        if len(self.starts) >= FETCH_BUDGET:
            return max(self.next_fetch_at, self.starts[-FETCH_BUDGET] + BUDGET_WINDOW)
        return self.next_fetch_at

    @property
    def bursting(self) -> bool:
        return bool(self.unknown)

    # -- what the loop tells -----------------------------------------------------

    def want(self, now: float, reason: str, urgent: bool = False) -> None:
        """Fetch soon: now if `urgent`, else once FETCH_GAP has passed since the
        last start; right after the fetch in flight if there is one."""
        self.reasons.add(reason)
        if self.in_flight_since is not None:
            self.again = True
            return
        self._fetch_by(now if urgent else max(now, self.last_start + FETCH_GAP))

    def started(self, now: float) -> None:
        if not self.reasons:
            self.reasons.add("new NIC not listed yet" if self.unknown else "metadata poll")
        self.in_flight_since = self.last_start = now
        self.next_fetch_at = None
        self.starts.append(now)

    def abandoned(self, now: float) -> None:
        """The fetch in flight was given up on: the next one starts at once."""
        self.in_flight_since = None
        self.failures += 1
        self.want(now, "the last fetch was abandoned", urgent=True)

    def failed(self, now: float, listed: frozenset[str]) -> str:
        """A fetch answered with an error; `listed`: MACs of the last good
        document. Returns what asked for the fetch."""
        self.in_flight_since = None
        self.failures += 1
        self.next_fetch_at = now + min(FETCH_RETRY, RETRY_FIRST * 2 ** self.failures)
        return self._finish(now, listed)

    def fetched(self, now: float, answer: Metadata, current: Metadata | None,
                attached: frozenset[str]) -> Fetched:
        """A fetch answered with a document; `current` is the one in use,
        `attached` the MACs of the NICs present."""
        self.in_flight_since = None
        self.failures = 0
        self.next_fetch_at = now + self.interval * self.jitter()
        metadata, held = self._hold_unlisted(now, answer, current, attached)
        return Fetched(metadata, held, self._finish(now, metadata.listed_macs))

    def nic_appeared(self, now: float, mac: str, listed: frozenset[str]) -> None:
        """A NIC that may be an ENI and that the listing may not name."""
        if mac in self.unknown or mac in listed:
            return  # its burst is running, or the listing has it
        self.past_bursts = {m: began for m, began in self.past_bursts.items()
                            if now - began < BURST_AGAIN}
        began = self.past_bursts.get(mac)
        if began is not None:
            if now - began <= BURST_FOR:  # back within its burst: go on with it
                self.unknown[mac] = self.past_bursts.pop(mac)
                self._fetch_by(max(now, self.last_start + self.burst_delay))
            return
        self.unknown[mac] = now
        self.burst_delay = BURST_FIRST
        self.want(now, "unknown NIC appeared", urgent=True)

    def nic_gone(self, mac: str) -> None:
        if mac in self.unknown:
            self.past_bursts[mac] = self.unknown.pop(mac)

    # -- inside --------------------------------------------------------------------

    def _fetch_by(self, at: float) -> None:
        if self.next_fetch_at is None or at < self.next_fetch_at:
            self.next_fetch_at = at

    def _budget_left(self, now: float) -> bool:
        while self.starts and self.starts[0] <= now - BUDGET_WINDOW:
            self.starts.popleft()
        return len(self.starts) < FETCH_BUDGET

    def _finish(self, now: float, listed: frozenset[str]) -> str:
        why = ", ".join(sorted(self.reasons)) or "poll"
        self.reasons.clear()
        self._burst_next(now, listed)
        if self.again:
            self.again = False
            self.want(now, "a change during the last fetch", urgent=True)
        return why

    def _burst_next(self, now: float, listed: frozenset[str]) -> None:
        """After an answer: the burst's next fetch, while a new NIC is unlisted."""
        for mac, since in list(self.unknown.items()):
            if mac in listed:
                del self.unknown[mac]
            elif now - since > BURST_FOR:
                self.past_bursts[mac] = self.unknown.pop(mac)
        if self.unknown:
            self._fetch_by(now + self.burst_delay)
            self.burst_delay = min(BURST_MAX, self.burst_delay * 2)

    def _hold_unlisted(self, now: float, answer: Metadata, current: Metadata | None,
                       attached: frozenset[str]) -> tuple[Metadata, tuple]:
        """Keep, for one more fetch, a listed ENI this answer leaves out while
        its NIC is still attached: one listing that misses an ENI must not
        tear it down (the next fetch, FETCH_GAP later, decides)."""
        if current is None:
            self.unlisted_once = frozenset()
            return answer, ()
        listed = answer.listed_macs
        held = tuple(eni for eni in current.secondary_enis
                     if eni.mac not in listed and eni.mac in attached
                     and eni.mac not in self.unlisted_once)
        self.unlisted_once = frozenset(eni.mac for eni in held)
        if not held:
            return answer, ()
        self._fetch_by(now + FETCH_GAP)
        enis = tuple(sorted(answer.enis + held, key=lambda eni: eni.mac))
        return answer._replace(enis=enis), held
