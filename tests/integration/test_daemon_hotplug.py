"""Hotplug: ENIs listed in the metadata but absent at start are configured as
soon as their NIC appears, without any further command."""

from __future__ import annotations

import time

from tests.harness.daemon import run_daemon
from tests.harness.enis import make_eni
from tests.harness.expect import eni_problems
from tests.harness.kernel import describe
from tests.harness.metadata import build_metadata, metadata_file
from tests.harness.prober import traffic_failures

HOTPLUG_TIMEOUT = 5.0  # seconds; the daemon reacts to the netlink event, typically in ~0.1 s


def test_pending_enis_configured_when_hot_plugged_one_by_one_and_in_a_burst(
        topology_factory, tmp_path):
    listed = [make_eni(i) for i in range(1, 6)]
    t = topology_factory()  # the primary NIC only
    path = metadata_file(tmp_path, build_metadata(t, enis=listed))

    with run_daemon(t, path, tmp_path) as d:
        ready = d.wait_ready()
        assert ready.fields["STATUS"].startswith("converged: 5 pending"), ready.fields
        timings = {}

        for eni in listed[:2]:  # one after another
            plugged = t.add_eni(eni)
            timings[eni.ifname] = d.wait_until(lambda: not eni_problems(t, plugged),
                                               HOTPLUG_TIMEOUT, what=f"{eni.ifname} configured")
            assert traffic_failures(t, plugged.ips) == []

        start = time.monotonic()
        burst = [t.add_eni(eni) for eni in listed[2:]]  # three at once
        print(f"the burst of 3 hotplugs took {time.monotonic() - start:.3f}s to make")
        for eni in burst:
            d.wait_until(lambda: not eni_problems(t, eni), HOTPLUG_TIMEOUT,
                         what=f"{eni.ifname} configured")
            timings[eni.ifname] = time.monotonic() - start
        print("hotplug -> configured (s):", {k: round(v, 3) for k, v in timings.items()})

        for eni in t.enis.values():
            assert eni_problems(t, eni) == [], describe(t)
        assert traffic_failures(t, [ip for e in burst for ip in e.ips]) == []
        assert traffic_failures(t, ["10.0.0.5"]) == []
        d.wait_notification(lambda n: n.fields.get("STATUS", "").startswith("converged: 5 in sync"))
        assert d.alive()
