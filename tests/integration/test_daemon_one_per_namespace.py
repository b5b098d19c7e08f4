"""One daemon per network namespace: a second `eni-agent daemon` in the same
namespace exits at once with code 8 and one line naming the first's PID,
changing nothing, while the first keeps working; daemons in two namespaces
both run (the name they hold is scoped to the namespace)."""

from __future__ import annotations

import time


from tests.harness.daemon import configured_daemon, run_daemon
from tests.harness.expect import eni_problems
from tests.harness.metadata import metadata_file
from tests.harness.prober import traffic_failures
from tests.harness.commands import ip
from tests.harness.enis import make_eni
from tests.harness.metadata import build_metadata


ALREADY_RUNNING = 8


def test_a_second_daemon_in_the_namespace_exits_8_naming_the_first(topology_with_eni,
                                                                     tmp_path):
    t = topology_with_eni
    eni = t.eni("eth1")
    path = metadata_file(tmp_path, build_metadata(t))
    with run_daemon(t, path, tmp_path / "first") as first:
        first.wait_ready()
        with run_daemon(t, path, tmp_path / "second") as second:
            started = time.monotonic()
            assert second.wait_exit(timeout=10) == ALREADY_RUNNING
            took = time.monotonic() - started
            lines = second.log_text().splitlines()
            assert lines == [f"eni-agent: daemon: another eni-agent daemon (pid "
                             f"{first.python_pid()}) already runs in this network namespace"]
            assert second.messages("READY") == []
            print(f"second daemon exited {ALREADY_RUNNING} after {took:.2f}s")
        # the first one keeps working
        ip(t.guest, "addr", "del", "10.0.1.10/24", "dev", "eth1")
        first.wait_until(lambda: not eni_problems(t, eni), 5.0, what="drift repaired")
        assert traffic_failures(t, eni.ips) == []
        assert first.alive()


def test_daemons_in_two_namespaces_both_run(topology_factory, tmp_path):
    a = topology_factory([make_eni(1)])
    b = topology_factory([make_eni(1)])
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with configured_daemon(a, tmp_path / "a", configured_within=0) as da, \
            configured_daemon(b, tmp_path / "b", configured_within=0) as db:
        for t in (a, b):
            assert traffic_failures(t, t.eni("eth1").ips) == []
        assert da.alive() and db.alive()
