"""`eni-agent daemon` start-up: present ENIs configured, READY=1 only after
that; without (valid) metadata, READY=1 within 15 s all the same; as non-root,
exit 6 at once."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.harness.commands import REPO
from tests.harness.daemon import run_daemon
from tests.harness.enis import make_eni
from tests.harness.expect import eni_problems
from tests.harness.kernel import describe, guest_state, owned_rules
from tests.harness.metadata import build_metadata, metadata_file
from tests.harness.prober import traffic_failures


def test_two_present_enis_configured_then_ready_with_one_line_status(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    enis = [t.eni("eth1"), t.eni("eth2")]
    path = metadata_file(tmp_path, build_metadata(t))

    def at_ready():  # runs in the notify thread the moment READY=1 arrives
        return {e.ifname: eni_problems(t, e) for e in enis}

    with run_daemon(t, path, tmp_path, on_ready=at_ready) as d:
        ready = d.wait_ready(timeout=15)
        # The kernel already held everything when READY=1 arrived.
        assert d.ready_result == {"eth1": [], "eth2": []}, describe(t)
        assert len(owned_rules(t)) == 4

        status = ready.fields["STATUS"]
        assert "\n" not in status and len(status) < 200
        assert re.fullmatch(r"converged: 2 in sync; metadata read \d\d:\d\d:\d\d UTC "
                            rf"\(pid {d.python_pid()}\)", status), status
        assert len(d.messages("READY")) == 1
        print(f"READY after {ready.at - d.started_at:.3f}s: {status!r}")

        assert traffic_failures(t, ["10.0.0.5", *enis[0].ips, *enis[1].ips]) == []
        assert d.alive()
        time.sleep(0.3)
        assert len(d.messages("READY")) == 1  # READY is sent once


def test_ready_is_not_sent_before_the_first_reconcile_has_changed_the_kernel(
        topology_with_eni, tmp_path):
    """Hold the apply lock so the first reconcile cannot run: no READY=1 and
    no change while it is held; READY=1 comes after the release, and by then
    the rules are in the kernel."""
    t = topology_with_eni
    eni = t.eni("eth1")
    path = metadata_file(tmp_path, build_metadata(t))
    before = guest_state(t)

    with run_daemon(t, path, tmp_path, start=False,
                    on_ready=lambda: (time.monotonic(), eni_problems(t, eni))) as d:
        os.makedirs(os.path.dirname(d.lock_path), exist_ok=True)
        fd = os.open(d.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            d.start()
            time.sleep(1.5)  # the daemon is up, waiting for the lock
            assert d.alive()
            assert d.messages("READY") == []
            assert guest_state(t) == before
            released = time.monotonic()
        finally:
            os.close(fd)
        ready = d.wait_ready(timeout=10)
        _, problems = d.ready_result
        assert ready.at > released
        assert problems == [], describe(t)
        assert eni_problems(t, eni) == []
        print(f"READY {ready.at - released:.3f}s after the lock was released")


def test_no_metadata_at_start_is_ready_within_15s_waiting_then_configures(
        topology_with_eni, tmp_path):
    """Boot never waits on metadata (issue 11 §4; this test used to expect no
    READY=1 until a document came): READY=1 within 15 s with STATUS=waiting
    for metadata, nothing changed, the ENI configured once the file appears."""
    t = topology_with_eni
    eni = t.eni("eth1")
    path = tmp_path / "etc" / "metadata.json"
    path.parent.mkdir(mode=0o700)
    before = guest_state(t)

    with run_daemon(t, path, tmp_path) as d:
        ready = d.wait_ready(timeout=25)
        assert ready.at - d.started_at < 17, "READY=1 came too late"
        assert ready.fields["STATUS"].startswith("waiting for metadata: "), ready.fields
        assert "not found" in ready.fields["STATUS"], ready.fields
        assert d.alive()
        assert guest_state(t) == before

        metadata_file(tmp_path, build_metadata(t))
        d.wait_until(lambda: not eni_problems(t, eni), 35, what="eth1 configured")
        d.wait_notification(lambda n: n.fields.get("STATUS", "").startswith(
            "converged: 1 in sync"), timeout=10)
        assert len(d.messages("READY")) == 1


def test_an_invalid_document_at_start_is_ready_within_15s_waiting(topology_with_eni, tmp_path):
    t = topology_with_eni
    eni = t.eni("eth1")
    path = metadata_file(tmp_path, {"mac": "not-a-mac"})
    before = guest_state(t)

    with run_daemon(t, path, tmp_path) as d:
        ready = d.wait_ready(timeout=25)
        assert ready.at - d.started_at < 17, "READY=1 came too late"
        assert ready.fields["STATUS"].startswith("waiting for metadata: invalid"), ready.fields
        assert guest_state(t) == before
        metadata_file(tmp_path, build_metadata(t))
        d.wait_until(lambda: not eni_problems(t, eni), 35, what="eth1 configured")


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_the_daemon_as_non_root_exits_6_at_once_with_one_line(tmp_path):
    """It used to retry forever under a "netlink error" label."""
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env["ENI_AGENT_LOCK"] = str(tmp_path / "apply.lock")
    start = time.monotonic()
    cp = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-m", "eni_agent", "daemon", "--metadata", "/nonexistent/metadata.json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - start
    assert cp.returncode == 6, cp
    lines = cp.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eni-agent: ") and "CAP_NET_ADMIN" in lines[0], \
        cp.stderr
    assert cp.stdout == ""
    print(f"non-root daemon: exit 6 after {took:.2f}s: {lines[0]}")
