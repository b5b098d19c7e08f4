"""The systemd watchdog: WATCHDOG=1 every WATCHDOG_USEC/2 when asked for,
also while the daemon is still waiting for metadata; none when WATCHDOG_PID
names another process."""

from __future__ import annotations

import time

from tests.harness.daemon import run_daemon
from tests.harness.metadata import build_metadata, write_metadata


def test_watchdog_pings_at_half_the_interval_even_before_ready(topology_with_eni, tmp_path):
    t = topology_with_eni
    path = tmp_path / "etc" / "metadata.json"
    path.parent.mkdir(mode=0o700)  # no metadata yet: the daemon is not ready
    with run_daemon(t, path, tmp_path, env={"WATCHDOG_USEC": "400000"}) as d:
        d.wait_notification(lambda n: n.fields.get("WATCHDOG") == "1")
        first = len(d.messages("WATCHDOG"))
        # They keep coming while not ready (a bounded wait, not a rate) ...
        d.wait_until(lambda: len(d.messages("WATCHDOG")) - first >= 8, 15.0,
                     what="eight WATCHDOG=1 before READY")
        assert d.messages("READY") == []
        # ... every 0.2 s: half of WATCHDOG_USEC. Judged by the median gap, which
        # a busy machine's occasional stall does not move, against the whole
        # 0.4 s period systemd enforces (a daemon pinging once per period, or
        # flooding, is out either way).
        at = [n.at for n in d.messages("WATCHDOG")[first:]]
        gaps = sorted(b - a for a, b in zip(at, at[1:]))
        print(f"WATCHDOG=1 gaps (s): {[round(g, 3) for g in gaps]} (expected ~0.2)")
        assert 0.1 < gaps[len(gaps) // 2] < 0.4, gaps

        write_metadata(build_metadata(t), path)
        d.wait_ready()
        count = len(d.messages("WATCHDOG"))
        d.wait_notification(lambda n: n.fields.get("WATCHDOG") == "1", after=len(d.messages()))
        assert len(d.messages("WATCHDOG")) > count  # and after READY too


def test_no_watchdog_pings_for_another_pid(topology_with_eni, tmp_path):
    t = topology_with_eni
    path = tmp_path / "etc" / "metadata.json"
    path.parent.mkdir(mode=0o700)
    write_metadata(build_metadata(t), path)
    with run_daemon(t, path, tmp_path, env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}) as d:
        d.wait_ready()
        time.sleep(0.5)
        assert d.messages("WATCHDOG") == []
