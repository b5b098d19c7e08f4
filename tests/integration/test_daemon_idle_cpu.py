"""At rest the daemon sleeps in select(): no polling, no CPU."""

from __future__ import annotations

import os
import time

import pytest

from .daemon_proc import eni_problems, metadata_file, run_daemon
from .netns import build_metadata

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespace tests need root"),
]

IDLE_SECONDS = 2.0
MAX_CPU = 0.05  # seconds of CPU over IDLE_SECONDS (the clock tick is 0.01 s)


def test_idle_daemon_uses_almost_no_cpu(topology_with_eni, tmp_path):
    t = topology_with_eni
    path = metadata_file(tmp_path, build_metadata(t))
    with run_daemon(t, path, tmp_path) as d:
        d.wait_ready()
        d.wait_until(lambda: not eni_problems(t, t.eni("eth1")))
        time.sleep(0.3)  # let it handle the events of its own changes
        pid = d.python_pid()
        assert "eni_agent" in open(f"/proc/{pid}/cmdline").read()
        before, notes = d.cpu_seconds(), len(d.messages())
        time.sleep(IDLE_SECONDS)
        used = d.cpu_seconds() - before
        print(f"CPU used while idle for {IDLE_SECONDS}s: {used:.3f}s "
              f"(start-up took {before:.2f}s of CPU)")
        assert used < MAX_CPU
        assert len(d.messages()) == notes  # and no reconcile ran meanwhile
        assert d.alive()
