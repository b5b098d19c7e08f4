"""When the daemon reconciles, in literal seconds: events gathered for 2 ms
(an address others put on an ENI followed at once), a due time never
postponed, retries backing off, and repairs slowed down (exponentially,
bounded, then back to at once) when another tool keeps undoing the agent's
changes."""

from __future__ import annotations

import pytest

from eni_agent.pacing import ReconcileSchedule

DRIFT = frozenset({"rule event"})


def schedule(now: float = 0.0) -> ReconcileSchedule:
    s = ReconcileSchedule(now, resync_interval=30.0, jitter=lambda: 1.0)
    s.begin(now)  # the start-up pass
    return s


ASKED_AT_100 = {
    "rule event": lambda s: s.event(100.0, "rule event"),
    "link event": lambda s: s.event(100.0, "link event"),
    "SIGHUP": lambda s: s.request(100.0, 0.0, "SIGHUP"),
    "lock held": lambda s: s.lock_held(100.0),
    "udev pending": lambda s: s.udev_pending(100.0),
}


@pytest.mark.parametrize("asked, due, served", [
    pytest.param(["rule event"], 100.002, DRIFT, id="an-event-2-ms-later"),
    pytest.param(["SIGHUP", "link event", "lock held"], 100.0,
                 {"SIGHUP", "link event", "lock held"},
                 id="a-later-request-never-postpones-an-earlier-due-time"),
    pytest.param(["lock held"], 100.25, {"lock held"}, id="the-lock-held-0.25-s-later"),
    pytest.param(["lock held", "udev pending"], 100.1,
                 {"lock held", "udev check of a new NIC"},
                 id="an-earlier-request-brings-the-due-time-forward"),
])
def test_when_the_pass_asked_for_at_100s_is_due(asked, due, served):
    s = schedule()
    for what in asked:
        ASKED_AT_100[what](s)
    assert s.due == pytest.approx(due, abs=1e-9)
    assert s.begin(due - 0.001) is None
    assert s.begin(due) == served


def test_failed_passes_are_retried_at_0_5_1_2_4_up_to_30s():
    s = schedule()
    delays = [s.retry(0.0, "netlink error") for _ in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    s.converged()
    assert s.retry(0.0, "x") == 0.5


def test_the_periodic_resync_is_30s_after_the_last_pass():
    s = schedule(0.0)
    assert s.wake_at() == 30.0
    s.event(10.0, "link event")
    s.begin(10.002)
    assert s.wake_at() == pytest.approx(40.002)


def repair(s: ReconcileSchedule, now: float):
    s.event(now, "rule event")
    start = max(now, s.due)
    assert s.begin(start) == DRIFT
    return start, s.drift_repaired(start, DRIFT, changed=True)


def test_a_tool_undoing_the_agents_work_is_met_with_repairs_backing_off():
    s = schedule()
    # removed every 0.1 s: the first 9 repairs at once (2 ms after each event)
    starts = []
    fight = None
    now = 100.0
    while now < 400.0:
        start, fight = repair(s, now)
        starts.append(round(start, 3))
        now = start + 0.1
    assert starts[:10] == [round(100.002 + i * 0.102, 3) for i in range(10)]
    gaps = [round(b - a, 3) for a, b in zip(starts[9:], starts[10:])]
    assert gaps[:8] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 64.0]
    assert fight.gap == 64.0


def removed_after_each_repair(s: ReconcileSchedule, repairs: int) -> tuple[float, float]:
    """A tool removing the rule 0.1 s after each repair, from 100 s on:
    when the last repair began, and when the tool stopped."""
    now = 100.0
    for _ in range(repairs):
        start, _ = repair(s, now)
        now = start + 0.1
    return start, now


def test_the_back_off_ends_when_the_tool_stops():
    s = schedule()
    start, _ = removed_after_each_repair(s, 12)
    assert s.backoff.gap == 4.0  # the 10th repair: 1 s; 11th: 2 s; 12th: 4 s
    # quiet: no repair for the gap plus 30 s, then a single removal is repaired at once
    assert not s.backoff.ended(start + 4.0 + 30.0)
    assert s.backoff.ended(start + 4.0 + 30.1)
    s.event(start + 50.0, "rule event")
    assert s.due == pytest.approx(start + 50.002)


def test_drift_is_not_a_fight_below_10_repairs_in_10s():
    s = schedule()
    for i in range(20):
        _, fight = repair(s, 100.0 + i * 1.2)  # 9 in any 10 s
        assert fight.gap == 0.0


def test_a_hotplug_is_not_slowed_down_by_a_fight():
    s = schedule()
    _, now = removed_after_each_repair(s, 12)
    s.event(now, "link event")
    assert s.due == pytest.approx(now + 0.002)


def test_an_address_others_put_on_an_eni_is_followed_at_once():
    s = schedule()
    s.event(100.0, "foreign address event")
    assert s.due == 100.0
    assert s.begin(100.0) == {"foreign address event"}


def test_a_followed_address_brings_a_gathering_burst_forward():
    s = schedule()
    s.event(100.0, "link event")
    s.event(100.001, "foreign address event")
    assert s.due == 100.001
    assert s.begin(100.001) == {"link event", "foreign address event"}


def test_a_followed_address_is_not_slowed_by_a_fight_over_drift():
    s = schedule()
    now = 100.0
    for _ in range(10):  # ten repairs within 10 s: repairs of drift now wait 1 s
        now = repair(s, now)[0] + 0.1
    assert s.backoff.gap == 1.0
    s.event(now, "foreign address event")
    assert s.due == now
