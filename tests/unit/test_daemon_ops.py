"""The daemon's hooks publish: the state file beside the lock at once, the
metrics file at most once a second (and when that second is over), and a
metrics_file given on SIGHUP is written from then on. Clocks are literal."""

from __future__ import annotations

import json

from eni_agent.daemon_ops import Operations
from eni_agent.report import EniReport, EniState, Report

from tests.harness.observed import config_with


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def report() -> Report:
    r = Report("sync")
    r.enis = [EniReport("00:16:3e:00:01:01", "eni-one", EniState.IN_SYNC, link="eth1")]
    return r


def test_hooks_publish_the_state_at_once_and_the_metrics_once_a_second(tmp_path, monkeypatch):
    monkeypatch.setenv("ENI_AGENT_LOCK", str(tmp_path / "run" / "apply.lock"))
    prom = tmp_path / "textfile" / "eni-agent.prom"
    prom.parent.mkdir()
    wall, mono = Clock(1_800_000_000.0), Clock(100.0)
    ops = Operations(config_with(metrics_file=str(prom)), clock=wall, monotonic=mono)
    state = tmp_path / "run" / "state.json"

    ops.fetch_done(None, 0.01, 12.0)
    assert json.loads(state.read_text())["metadata"]["next_fetch_at"] == wall.now + 12
    assert "eni_agent_passes_total 0" in prom.read_text()

    wall.now += 0.4
    mono.now += 0.4
    ops.pass_done(report(), {"start"}, 0.003, repair=False)
    assert json.loads(state.read_text())["counters"]["passes"] == 1  # at once
    assert "eni_agent_passes_total 0" in prom.read_text()  # held back ...
    assert abs(ops.publish_at - (mono.now + 0.6)) < 1e-6  # ... until then
    wall.now += 0.6
    mono.now += 0.6
    ops.publish()
    assert "eni_agent_passes_total 1" in prom.read_text() and ops.publish_at is None
    assert ops.status_line().startswith("converged: 1 in sync; metadata read ")


def test_a_metrics_file_set_on_reload_is_written_from_then_on(tmp_path, monkeypatch):
    monkeypatch.setenv("ENI_AGENT_LOCK", str(tmp_path / "apply.lock"))
    ops = Operations(config_with(), clock=Clock(1_800_000_000.0), monotonic=Clock(5.0))
    ops.pass_done(report(), {"start"}, 0.003, repair=False)
    prom = tmp_path / "eni-agent.prom"
    assert not prom.exists()
    ops.configure(config_with(metrics_file=str(prom)))
    ops.notifications_lost()
    assert "eni_agent_netlink_notifications_lost_total 1" in prom.read_text()
