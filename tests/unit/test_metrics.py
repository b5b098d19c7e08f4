"""The metrics file parses as the Prometheus text format (prometheus_client's
own parser) and says what the view says; the files are written only when
they changed, at most once a second, atomically and with their modes."""

from __future__ import annotations

import json
import os
import stat

import pytest
from prometheus_client.parser import text_string_to_metric_families

from eni_agent.daemon_view import DaemonView
from eni_agent.errors import MetadataUnavailable
from eni_agent.metrics import Publisher, render_metrics
from eni_agent.report import EniReport, EniState, Report

T0 = 1_800_000_000.0


def busy_view() -> DaemonView:
    v = DaemonView(pid=42, started_at=T0, source="http://100.100.100.200")
    r = Report("sync")
    e = EniReport("00:16:3e:00:01:01", "eni-one", EniState.CONFIGURED, link="eth1")
    e.changes = ["add address 10.0.1.10/24 dev eth1", "add route \"odd\\name\""]
    r.enis = [e, EniReport("00:16:3e:00:02:01", None, EniState.PENDING)]
    v.fetch_done(None, T0, T0 + 12, duration=0.02)
    v.fetch_done(MetadataUnavailable("down"), T0 + 12, T0 + 13, duration=1.5)
    v.pass_done(r, {"start"}, 0.0042, repair=False, now=T0 + 1)
    v.notifications_lost()
    return v


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_metrics_parse_and_say_what_the_view_says():
    got = samples(render_metrics(busy_view().document(T0 + 2)))
    assert got[("eni_agent_passes_total", ())] == 1
    assert got[("eni_agent_repairs_total", ())] == 0
    assert got[("eni_agent_changes_total", (("kind", "add_address"),))] == 1
    assert got[("eni_agent_metadata_fetch_failures_total", (("kind", "unavailable"),))] == 1
    assert got[("eni_agent_metadata_fetch_failures_total", (("kind", "timeout"),))] == 0
    assert got[("eni_agent_netlink_notifications_lost_total", ())] == 1
    assert got[("eni_agent_enis", (("state", "in-sync"),))] == 1  # configured and verified
    assert got[("eni_agent_enis", (("state", "pending"),))] == 1
    assert got[("eni_agent_enis", (("state", "failed"),))] == 0
    assert got[("eni_agent_metadata_last_success_timestamp_seconds", ())] == T0
    assert got[("eni_agent_metadata_last_fetch_success", ())] == 0
    assert got[("eni_agent_metadata_last_fetch_duration_seconds", ())] == 1.5
    assert got[("eni_agent_last_pass_duration_seconds", ())] == 0.0042
    assert got[("eni_agent_start_time_seconds", ())] == T0


def test_a_fresh_daemon_has_no_timestamps_it_cannot_know():
    v = DaemonView(pid=42, started_at=T0, source="/etc/eni-agent/metadata.json")
    got = samples(render_metrics(v.document(T0)))
    assert not [name for name, _ in got if "last" in name]
    assert got[("eni_agent_passes_total", ())] == 0


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "run" / "state.json", tmp_path / "textfile" / "eni-agent.prom"


def test_written_on_change_metrics_at_most_once_a_second_with_their_modes(paths):
    state, metrics = paths
    v = busy_view()
    p = Publisher(state, metrics, gap=1.0)
    assert p.flush(v.document, T0 + 2) is None
    assert stat.S_IMODE(state.stat().st_mode) == 0o600  # root only
    assert stat.S_IMODE(metrics.stat().st_mode) == 0o644  # node_exporter reads it
    first = state.stat().st_mtime_ns, metrics.read_text()

    assert p.flush(v.document, T0 + 5) is None  # nothing changed: nothing written
    assert state.stat().st_mtime_ns == first[0]

    v.notifications_lost()
    assert p.flush(v.document, T0 + 5.2) is None  # > 1 s since the last write: now
    v.notifications_lost()
    assert p.flush(v.document, T0 + 5.5) == pytest.approx(0.7)  # held back: come back then
    assert samples(metrics.read_text())[("eni_agent_netlink_notifications_lost_total", ())] == 2
    assert json.loads(state.read_text())["counters"]["notifications_lost"] == 3  # at once
    assert p.flush(v.document, T0 + 6.2) is None
    assert samples(metrics.read_text())[("eni_agent_netlink_notifications_lost_total", ())] == 3
    assert sorted(os.listdir(state.parent)) == ["state.json"]  # no temporary file left


def test_a_file_that_cannot_be_written_is_reported_and_the_other_still_is(paths, tmp_path):
    state, _ = paths
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    p = Publisher(state, blocked / "eni-agent.prom", gap=1.0)
    p.flush(busy_view().document, T0)
    assert state.exists() and "metrics" in p.failed
