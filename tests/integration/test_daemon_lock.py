"""The apply lock shared by the daemon and one-shot commands (ENI_AGENT_LOCK
points every process of a test at the same per-test lock file)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time

from tests.harness.commands import REPO, ip
from tests.harness.daemon import eni_agent_cli, run_daemon
from tests.harness.expect import eni_problems
from tests.harness.kernel import describe
from tests.harness.metadata import build_metadata, metadata_file
from tests.harness.prober import traffic_failures


def test_one_shot_sync_while_the_daemon_runs_is_in_sync_and_the_daemon_keeps_working(
        topology_with_eni, tmp_path):
    t = topology_with_eni
    eni = t.eni("eth1")
    path = metadata_file(tmp_path, build_metadata(t))
    with run_daemon(t, path, tmp_path) as d:
        d.wait_ready()
        cp = eni_agent_cli(t, d, "sync", "--metadata", str(path), "--json")
        assert cp.returncode == 0, cp.stderr
        report = json.loads(cp.stdout)
        assert report["result"] == "converged"
        assert [(e["mac"], e["state"], e["changes"]) for e in report["enis"]] == \
            [(eni.mac, "in-sync", [])]
        assert report["other_changes"] == []

        # The daemon is still at work: drift is repaired.
        ip(t.guest, "addr", "del", "10.0.1.10/24", "dev", "eth1")
        d.wait_until(lambda: not eni_problems(t, eni), 3.0, what="drift repaired")
        assert traffic_failures(t, eni.ips) == []
        assert d.alive()


def test_sync_waits_for_a_held_lock_and_converges_after_release(topology_with_eni,
                                                                daemon_with_eni):
    """While another writer holds the lock, neither `sync` nor the daemon
    touches the kernel; `sync` keeps waiting (it gives up with exit 7 after
    10 s, not exercised here) and converges once the lock is released. (Who
    repairs then, `sync` or the daemon, is a race: the daemon's own repair is
    the next test's.)"""
    t, d = topology_with_eni, daemon_with_eni
    eni = t.eni("eth1")
    fd = os.open(d.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    sync = None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        ip(t.guest, "rule", "del", "from", "10.0.1.11", "priority", "10000")  # drift
        env = {**os.environ, "ENI_AGENT_LOCK": d.lock_path}
        env.pop("NOTIFY_SOCKET", None)
        sync = subprocess.Popen(
            ["ip", "netns", "exec", t.guest, sys.executable, "-m", "eni_agent", "sync",
             "--metadata", str(d.metadata), "--config", str(d.config)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)  # several of the daemon's lock waits (0.2 s, retried)
        assert sync.poll() is None, sync.communicate()  # still waiting for the lock
        assert eni_problems(t, eni) != []  # nobody could repair the drift
        assert d.alive()
    finally:
        os.close(fd)  # release
        if sync is not None and sync.poll() is None:
            try:
                out, err = sync.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                sync.kill()
                out, err = sync.communicate()
    assert sync.returncode == 0, (out, err)
    assert "sync: converged" in out
    assert eni_problems(t, eni) == [], describe(t)
    assert d.alive()


def test_daemon_keeps_retrying_a_held_lock_and_repairs_after_release(topology_with_eni,
                                                                     daemon_with_eni):
    """No one-shot `sync` here: once the lock is released, only the daemon
    can be the one that repairs."""
    t, d = topology_with_eni, daemon_with_eni
    eni = t.eni("eth1")
    fd = os.open(d.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        ip(t.guest, "rule", "del", "from", "10.0.1.11", "priority", "10000")  # drift
        d.wait_log("another eni-agent is applying changes", 5.0, count=2)  # tried, retried
        assert eni_problems(t, eni) != []
        assert d.alive()
    finally:
        os.close(fd)  # release
    d.wait_until(lambda: not eni_problems(t, eni), 5.0, what="drift repaired after release")
    assert traffic_failures(t, eni.ips) == []
    assert d.alive()
