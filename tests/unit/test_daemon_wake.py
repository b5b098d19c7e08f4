"""When the loop wakes with nothing on its sockets: the next pass, fetch,
watchdog ping, or the READY deadline while no metadata has come."""

from __future__ import annotations

from eni_agent.config import Config
from eni_agent.daemon import Daemon

from tests.harness.documents import example_metadata


def daemon() -> Daemon:
    d = Daemon(Config(metadata="/nonexistent/metadata.json", resync_interval=30,
                      keep_managers_off=False), now=100.0)
    d.watchdog = d.next_watchdog = None
    return d


def test_a_start_up_pass_is_due_at_once():
    assert daemon().wake_at() == 100.0


def test_without_metadata_ready_goes_out_10s_after_start():
    d = daemon()
    d.schedule.begin(100.0)
    assert d.wake_at() == 110.0


def test_with_metadata_a_passed_ready_deadline_wakes_nobody():
    d = daemon()
    d.schedule.begin(100.0)
    d.supply.metadata = example_metadata()  # in, but not converged yet: not ready
    assert d.wake_at() == 130.0  # the periodic resync, not 110 over and over
