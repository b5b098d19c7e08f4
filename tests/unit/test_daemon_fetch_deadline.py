"""A metadata fetch still running 15 s after it started is abandoned and the
next one started; its late answer is ignored; a fetch thread stuck for 60 s
stops the watchdog pings, so systemd restarts the daemon."""

from __future__ import annotations

import threading

import pytest

from eni_agent.config import Config
from eni_agent.daemon import Daemon
from eni_agent.fetcher import FetchWorker
from eni_agent.model import parse_metadata

from tests.harness.documents import EXAMPLE_BYTES
from tests.harness.notifier import RecordingNotifier


class BlockedLoads:
    """A load_metadata whose calls block until released, in call order."""

    def __init__(self):
        self.releases: list[threading.Event] = []
        self.called = threading.Condition()

    def __call__(self, source):
        release = threading.Event()
        with self.called:
            self.releases.append(release)
            self.called.notify_all()
        release.wait(30)
        return parse_metadata(EXAMPLE_BYTES)

    def wait_calls(self, count: int) -> None:
        with self.called:
            assert self.called.wait_for(lambda: len(self.releases) >= count, 5)

    def release_all(self):
        for release in self.releases:
            release.set()


@pytest.fixture
def loads(monkeypatch):
    blocked = BlockedLoads()
    monkeypatch.setattr("eni_agent.supply.load_metadata", blocked)
    yield blocked
    blocked.release_all()


def answers_within(worker: FetchWorker, timeout: float = 5.0) -> list:
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        answers = worker.answers()
        if answers:
            return answers
        done.wait(0.01)
    return []


def pings(notifier: Recorder) -> int:
    return sum(1 for fields in notifier.sent if fields.get("WATCHDOG") == 1)


def test_an_abandoned_fetchs_late_answer_is_ignored_and_the_next_taken(loads):
    worker = FetchWorker(loads)
    worker.start("http://127.0.0.1:9", 0.0)
    loads.wait_calls(1)
    worker.abandon()
    worker.start("http://127.0.0.1:9", 15.0)
    loads.wait_calls(2)
    loads.releases[0].set()
    assert answers_within(worker, 0.5) == []
    loads.releases[1].set()
    assert [a.primary_mac for a in answers_within(worker)] == ["00:16:3e:00:00:01"]


def test_a_thread_stuck_60s_is_reported_until_it_ends(loads):
    worker = FetchWorker(loads)
    worker.start("http://127.0.0.1:9", 100.0)
    loads.wait_calls(1)
    worker.abandon()
    assert worker.stuck_since(160.0) is None
    assert worker.stuck_since(160.1) == 100.0
    loads.releases[0].set()
    worker.abandoned[0][0].join(5)
    assert worker.stuck_since(200.0) is None


def daemon() -> tuple[Daemon, Recorder]:
    notifier = RecordingNotifier()
    config = Config(metadata="http://127.0.0.1:9", resync_interval=3600,
                    keep_managers_off=False)  # a unit test never writes the host's files
    d = Daemon(config, notifier=notifier, now=0.0)
    d.watchdog, d.next_watchdog = 1.0, 0.0
    return d, notifier


def test_the_daemon_abandons_a_fetch_at_15s_and_starts_the_next(loads):
    d, notifier = daemon()
    d.tick(0.0)  # the start-up pass asks for the metadata
    loads.wait_calls(1)
    assert d.wake_at() == 1.0  # the watchdog; the abandon is at 15
    d.next_watchdog = None
    assert d.wake_at() == 10.0  # READY without metadata at 10 s
    d.tick(10.0)
    assert d.wake_at() == 15.0
    d.tick(14.9)
    assert len(loads.releases) == 1
    d.tick(15.0)
    loads.wait_calls(2)
    assert any("abandoned" in str(f.get("STATUS", "")) for f in notifier.sent), notifier.sent
    assert d.wake_at() == 30.0


def test_a_stuck_fetch_thread_stops_the_watchdog(loads):
    d, notifier = daemon()
    d.tick(0.0)
    loads.wait_calls(1)
    assert pings(notifier) == 1
    d.tick(15.0)  # abandoned; the next one hangs too
    loads.wait_calls(2)
    before = pings(notifier)
    d.next_watchdog = 0.0
    d.tick(59.0)
    assert pings(notifier) == before + 1, "not fed while the stuck thread is young"
    d.next_watchdog = 0.0
    d.tick(60.1)
    assert pings(notifier) == before + 1, "fed although a fetch thread is stuck"
    loads.release_all()
    for thread, _ in d.supply.fetcher.abandoned:
        thread.join(5)
    d.next_watchdog = 0.0
    d.tick(61.0)
    assert pings(notifier) == before + 2
