"""Metadata request storms: a NIC that flaps makes no more fetches than one
failover burst (it resumes its burst instead of starting a new one each time
it comes back), and container-style veth churn makes none: a burst is for
NICs with a device behind them. Whatever the links do, at most 75 fetches
start in a minute (docs/daemon-behaviour.md)."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.harness.daemon import daemon_for
from tests.harness.enis import make_eni
from tests.harness.metadata_service import serve_metadata


POLL = 60
FLAP_FOR = 30.0
BUDGET = 75  # fetches in any minute


def flap(t, mac: str, seconds: float) -> None:
    """A veth with `mac` created and deleted every 0.1 s."""
    script = (f"end=$(($(date +%s) + {int(seconds)})); while [ $(date +%s) -lt $end ]; do "
              f"ip link add flap0 address {mac} type veth peer name flap1 2>/dev/null; "
              "sleep 0.05; ip link del flap0 2>/dev/null; sleep 0.05; done")
    subprocess.run(["ip", "netns", "exec", t.guest, "sh", "-c", script], check=True,
                   timeout=seconds + 30)


@pytest.mark.parametrize("virtual_links_burst", [True, False],
                         ids=["as-if-a-nic", "veth-churn"])
def test_a_flapping_unlisted_nic_stays_within_the_budget(topology_factory, tmp_path,
                                                           virtual_links_burst):
    t = topology_factory([make_eni(1)])
    with serve_metadata(t, tmp_path) as svc, \
            daemon_for(t, svc, tmp_path, metadata_interval=POLL, resync_interval=None,
                       burst_for_virtual_links=virtual_links_burst) as d:
        d.wait_ready(timeout=30)
        time.sleep(2.5)
        mark = svc.mark()
        flap(t, "00:16:3e:00:66:01", FLAP_FOR)
        fetches = svc.fetches(mark)
        print(f"{len(fetches)} fetches ({len(svc.requests(mark))} requests) in "
              f"{FLAP_FOR:g}s of a NIC flapping every 0.1 s "
              f"({'may be an ENI' if virtual_links_burst else 'a veth'})")
        if virtual_links_burst:
            # one burst, resumed: 0, 0.25, 0.75, then about one a second
            assert 10 <= len(fetches) <= FLAP_FOR + 5, fetches
        else:
            assert len(fetches) <= 1, fetches  # at most the regular poll
        assert len(fetches) <= BUDGET
        assert d.alive()
