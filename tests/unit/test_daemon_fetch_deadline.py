"""A metadata fetch that outlives its deadline is abandoned and the next one
started; its late answer is ignored; a fetch thread stuck for good stops the
watchdog pings, so systemd restarts the daemon."""

from __future__ import annotations

import math
import socket
import threading

import pytest

from eni_agent import daemon as daemon_module
from eni_agent.config import Config
from eni_agent.daemon import FETCH_ABANDON, FETCH_STUCK, Daemon
from eni_agent.model import parse_metadata

from tests.harness.documents import EXAMPLE_BYTES


class Recorder:
    def __init__(self):
        self.sent = []

    def send(self, **fields):
        self.sent.append(fields)
        return True


@pytest.fixture
def blocked(monkeypatch):
    """load_metadata blocks until its release event is set; returns the events."""
    releases: list[threading.Event] = []

    def load(source):
        release = threading.Event()
        releases.append(release)
        release.wait(30)
        return parse_metadata(EXAMPLE_BYTES)

    monkeypatch.setattr(daemon_module, "load_metadata", load)
    yield releases
    for release in releases:
        release.set()


def make_daemon() -> tuple[Daemon, Recorder]:
    notifier = Recorder()
    d = Daemon(Config(metadata="http://127.0.0.1:9"), notifier=notifier)
    d._fetch_wake_r, d._fetch_wake_w = socket.socketpair()
    d._fetch_wake_r.setblocking(False)
    d.due = None  # no reconcile in these tests: no netlink
    d.next_resync = math.inf
    d.watchdog, d.next_watchdog = 1.0, 0.0
    return d, notifier


def pings(notifier: Recorder) -> int:
    return sum(1 for fields in notifier.sent if fields.get("WATCHDOG") == 1)


def wait_for(predicate, timeout=5.0):
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        event.wait(0.01)
    raise AssertionError("timed out")


def test_a_fetch_past_its_deadline_is_abandoned_and_the_next_started(blocked):
    d, notifier = make_daemon()
    d._want_fetch("test", gap=False)
    first, started = d.fetching, d.fetch_started
    d._tick(started + 1)
    assert d.fetching is first and pings(notifier) == 1

    d._tick(started + FETCH_ABANDON + 0.1)
    assert d.fetching is not None and d.fetching is not first, "no new fetch started"
    assert any("waiting for metadata" in str(f.get("STATUS", "")) and "abandoned" in
               str(f.get("STATUS", "")) for f in notifier.sent), notifier.sent

    # the abandoned fetch answers late: ignored, the new one still awaited
    blocked[0].set()
    wait_for(lambda: not first.is_alive())
    d._on_fetched()
    assert d.metadata is None and d.fetching is not None
    # the new fetch's answer is taken
    wait_for(lambda: len(blocked) == 2)
    blocked[1].set()
    wait_for(lambda: not d._fetched.empty())
    d._on_fetched()
    assert d.metadata is not None and d.fetching is None


def test_a_stuck_fetch_thread_stops_the_watchdog(blocked):
    d, notifier = make_daemon()
    d._want_fetch("test", gap=False)
    started = d.fetch_started
    d._tick(started + FETCH_ABANDON + 0.1)  # abandoned; the next one hangs too
    before = pings(notifier)
    d.next_watchdog = 0.0
    d._tick(started + FETCH_ABANDON + 1)
    assert pings(notifier) == before + 1, "fed while the stuck thread is young"
    d.next_watchdog = 0.0
    d._tick(started + FETCH_STUCK + 1)
    assert pings(notifier) == before + 1, "fed although a fetch thread is stuck"
    # once the stuck thread ends, the watchdog is fed again
    for release in blocked:
        release.set()
    wait_for(lambda: not any(t.is_alive() for t, _ in d.abandoned))
    d.next_watchdog = 0.0
    d._tick(started + FETCH_STUCK + 2)
    assert pings(notifier) == before + 2
