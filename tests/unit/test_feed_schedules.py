"""When the daemon asks the metadata service, stated in literal seconds: the
poll, the failover burst for a NIC the listing does not name, the retry after
a failure, the abandon of a hung fetch, the second answer that confirms an
ENI left out, and the budget no link behaviour can exceed."""

from __future__ import annotations

import pytest

from eni_agent.feed import Action, MetadataFeed
from eni_agent.model import Metadata

from tests.harness.documents import SECOND_MAC, example_metadata

NEW_MAC = "00:16:3e:00:09:01"


def feed(interval: float = 60.0) -> MetadataFeed:
    return MetadataFeed(interval, jitter=lambda: 1.0)


class Service:
    """Drives a feed as the daemon's loop does, answering every fetch at once
    (or after `latency`) with `document`."""

    def __init__(self, f: MetadataFeed, document: Metadata, latency: float = 0.0):
        self.feed, self.document, self.latency = f, document, latency
        self.current: Metadata | None = document
        self.fetches: list[float] = []

    def run_until(self, end: float, events=()) -> list[float]:
        """Step through time to `end`; `events`: (time, callable(now)) in order."""
        events = list(events)
        while True:
            wake = self.feed.wake_at()
            at = min([w for w in (wake, events[0][0] if events else None) if w is not None],
                     default=None)
            if at is None or at >= end:
                return self.fetches
            if events and events[0][0] <= at:
                when, happen = events.pop(0)
                happen(when)
                continue
            self.step(at)

    def step(self, now: float) -> None:
        action = self.feed.next_action(now)
        if action is Action.FETCH:
            self.feed.started(now)
            self.fetches.append(round(now, 6))
            done = now + self.latency
            fetched = self.feed.fetched(done, self.document, self.current, frozenset())
            self.current = fetched.metadata
        elif action is Action.ABANDON:
            self.feed.abandoned(now)


def started_long_ago(interval: float = 60.0) -> tuple[MetadataFeed, Service]:
    """A feed whose first fetch was at 0 s (the poll is then due at
    `interval`), and the service answering it."""
    f = feed(interval)
    service = Service(f, example_metadata())
    f.want(0.0, "start", urgent=True)
    service.step(0.0)
    service.fetches.clear()
    return f, service


GONE = "gone"
EXAMPLE_LISTING = example_metadata().listed_macs  # NEW_MAC is not in it


def links(f: MetadataFeed, script) -> list:
    """`script`: (time, mac, the listing then) for a NIC that appears,
    (time, mac, GONE) for one that goes; as the events `run_until` takes."""
    return [(at, (lambda now, mac=mac: f.nic_gone(mac)) if listing == GONE
             else (lambda now, mac=mac, listing=listing: f.nic_appeared(now, mac, listing)))
            for at, mac, listing in script]


UNLISTED_AT_100 = [(100.0, NEW_MAC, EXAMPLE_LISTING)]
APPEARS_TWICE_300S_APART = [(100.0, NEW_MAC, EXAMPLE_LISTING), (101.0, NEW_MAC, GONE),
                            (200.0, NEW_MAC, EXAMPLE_LISTING), (201.0, NEW_MAC, GONE),
                            (401.0, NEW_MAC, EXAMPLE_LISTING)]


@pytest.mark.parametrize("interval, script, end, window, expected", [
    pytest.param(12.0, [], 50.0, (0.0, 50.0), [12.0, 24.0, 36.0, 48.0],
                 id="the-poll-follows-each-answer-by-the-interval"),
    pytest.param(60.0, UNLISTED_AT_100, 106.0, (100.0, 106.0),
                 [100.0, 100.25, 100.75, 101.75, 102.75, 103.75, 104.75, 105.75],
                 id="an-unknown-nic-at-0-0.25-0.75-1.75-s-then-every-second"),
    pytest.param(60.0, UNLISTED_AT_100, 300.0, (100.0, 161.0),
                 [100.0, 100.25, 100.75, *(101.75 + i for i in range(60))],
                 id="the-burst-for-an-unlisted-nic-ends-after-a-minute-63-fetches"),
    pytest.param(60.0, UNLISTED_AT_100, 300.0, (161.0, 300.0), [220.75, 280.75],
                 id="after-the-burst-the-poll-resumes"),
    # not listed when it appears; the answers to come list it
    pytest.param(60.0, [(100.0, SECOND_MAC, frozenset())], 200.0, (0.0, 200.0),
                 [60.0, 100.0, 160.0], id="a-burst-ends-when-the-listing-names-the-nic"),
    pytest.param(60.0, APPEARS_TWICE_300S_APART, 500.0, (200.0, 201.0), [],
                 id="no-second-burst-for-a-nic-within-300-s"),
    pytest.param(60.0, APPEARS_TWICE_300S_APART, 500.0, (400.0, 402.0), [401.0, 401.25, 401.75],
                 id="a-new-burst-300-s-after-the-last-began"),
])
def test_when_the_feed_fetches(interval, script, end, window, expected):
    """A feed that fetched at 0 s, the NICs coming and going as `script` says:
    the fetches that start in `window` (from, to)."""
    f, service = started_long_ago(interval)
    fetches = service.run_until(end, links(f, script))
    assert [t for t in fetches if window[0] <= t < window[1]] == expected


def test_a_fetch_asked_for_without_urgency_waits_2s_after_the_last_start():
    f = feed()
    service = Service(f, example_metadata())
    f.want(10.0, "SIGHUP", urgent=True)
    service.step(10.0)
    f.want(10.5, "something")
    assert f.next_fetch_at == 12.0
    f.want(11.0, "sooner", urgent=True)
    assert f.next_fetch_at == 11.0


def test_failures_are_retried_at_1_2_4_8_then_every_10s():
    f = feed()
    f.want(0.0, "start", urgent=True)
    fetches = []
    now = 0.0
    for _ in range(7):
        assert f.next_action(now) is Action.FETCH
        f.started(now)
        fetches.append(now)
        f.failed(now, frozenset())
        now = f.wake_at()
    assert fetches == [0.0, 1.0, 3.0, 7.0, 15.0, 25.0, 35.0]


def test_a_fetch_running_15s_is_abandoned_and_the_next_starts_at_once():
    f = feed()
    f.want(0.0, "start", urgent=True)
    f.started(0.0)
    assert f.wake_at() == 15.0
    assert f.next_action(14.9) is Action.WAIT
    assert f.next_action(15.0) is Action.ABANDON
    f.abandoned(15.0)
    assert f.next_action(15.0) is Action.FETCH


def test_asked_for_during_a_fetch_fetches_again_right_after_it():
    f = feed()
    f.want(0.0, "start", urgent=True)
    f.started(0.0)
    f.want(0.5, "metadata file changed", urgent=True)
    assert f.next_action(0.6) is Action.WAIT
    fetched = f.fetched(0.7, example_metadata(), None, frozenset())
    assert "start" in fetched.why
    assert f.next_action(0.7) is Action.FETCH


def test_an_eni_left_out_while_attached_is_kept_until_a_second_answer_agrees():
    f = feed()
    full = example_metadata()
    without = full._replace(enis=tuple(e for e in full.enis if e.mac != SECOND_MAC))
    f.want(0.0, "start", urgent=True)
    f.started(0.0)
    first = f.fetched(0.0, without, full, frozenset({SECOND_MAC}))
    assert [e.mac for e in first.held] == [SECOND_MAC]
    assert SECOND_MAC in first.metadata.listed_macs
    assert f.next_fetch_at == 2.0  # asked again soon, not at the poll
    f.started(2.0)
    second = f.fetched(2.0, without, first.metadata, frozenset({SECOND_MAC}))
    assert second.held == () and SECOND_MAC not in second.metadata.listed_macs


def test_a_flapping_unlisted_nic_resumes_its_burst_instead_of_restarting_it():
    f, service = started_long_ago()
    listed = example_metadata().listed_macs
    events = []
    for i in range(600):  # gone and back every 0.1 s for a minute
        at = 100.0 + i * 0.1
        events.append((at, (lambda now: f.nic_gone(NEW_MAC)) if i % 2
                       else (lambda now: f.nic_appeared(now, NEW_MAC, listed))))
    fetches = service.run_until(160.0, events)
    burst = [t for t in fetches if t >= 100.0]
    assert burst[:4] == [100.0, 100.25, 100.75, 101.75]
    assert len(burst) <= 62


def test_whatever_the_links_do_at_most_75_fetches_start_in_a_minute():
    f, service = started_long_ago()
    listed = example_metadata().listed_macs
    # a new unlisted NIC every 0.5 s: each starts a burst of its own
    events = [(100.0 + i * 0.5, lambda now, i=i: f.nic_appeared(
        now, f"00:16:3e:01:{i // 256:02x}:{i % 256:02x}", listed)) for i in range(240)]
    fetches = service.run_until(220.0, events)
    for start in fetches:
        window = [t for t in fetches if start <= t < start + 60.0]
        assert len(window) <= 75, (start, len(window))
    assert len([t for t in fetches if 100.0 <= t < 160.0]) == 75
