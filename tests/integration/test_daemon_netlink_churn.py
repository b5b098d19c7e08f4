"""A NIC that comes and goes while it is being configured makes netlink
requests fail mid-way: the daemon must survive every failure and converge
once the churn stops."""

from __future__ import annotations

import time

from tests.harness.daemon import run_daemon
from tests.harness.enis import make_eni
from tests.harness.expect import eni_problems
from tests.harness.kernel import describe, owned_rules
from tests.harness.metadata import build_metadata, metadata_file
from tests.harness.prober import traffic_failures

CYCLES = 10
CONVERGE_TIMEOUT = 10.0  # seconds: generous, the daemon may be backing off after failures


def test_link_added_and_deleted_in_a_loop_never_kills_the_daemon(topology_factory, tmp_path):
    listed = [make_eni(1), make_eni(2)]
    t = topology_factory([listed[1]])  # eth2 stays; eth1 churns
    path = metadata_file(tmp_path, build_metadata(t, enis=listed))
    with run_daemon(t, path, tmp_path) as d:
        d.wait_ready()
        start = time.monotonic()
        for i in range(CYCLES):
            t.add_eni(listed[0])
            time.sleep(0.01 * (i % 5))  # vary the moment: before, during, after the apply
            t.remove_eni("eth1")
        print(f"{CYCLES} add/remove cycles took {time.monotonic() - start:.2f}s")
        assert d.alive()

        eni = t.add_eni(listed[0])  # it finally stays
        took = d.wait_until(lambda: not eni_problems(t, eni), CONVERGE_TIMEOUT,
                            what="convergence after the churn")
        print(f"converged {took:.3f}s after the last hotplug")
        for e in t.enis.values():
            assert eni_problems(t, e) == [], describe(t)
        assert len(owned_rules(t)) == 4  # nothing left over from the vanished links
        assert traffic_failures(t, [*eni.ips, *t.eni("eth2").ips[:1]]) == []
        assert d.alive()
        assert d.log_lines("Traceback") == [] and d.log_lines("internal error") == []
        failures = [line for line in d.log_lines() if "WARNING" in line or "ERROR" in line]
        print(f"{len(failures)} warning/error lines logged during the churn")
