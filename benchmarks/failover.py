"""Failover rows of the benchmark: an ENI attached to a running instance,
with the daemon reading a metadata stand-in that answers like ECS.

  NIC first      the NIC appears, the service lists it 3 s later (the usual
                 order on ECS): time from the listing to the first TCP
                 handshake answered through the ENI
  listing first  the service lists it, then the NIC appears: time from the
                 NIC appearing to the first handshake

Run as root: `python benchmarks/failover.py [--runs N]` (run.py runs it too).
It reuses the tests' harness (tests/harness): namespaces, stand-in and daemon.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness.agent import write_config  # noqa: E402
from tests.harness.daemon import run_daemon  # noqa: E402
from tests.harness.enis import make_eni  # noqa: E402
from tests.harness.metadata import build_metadata  # noqa: E402
from tests.harness.metadata_service import serve_metadata  # noqa: E402
from tests.harness.prober import inbound_handshake  # noqa: E402
from tests.harness.topology import Topology  # noqa: E402

POLL = 60  # seconds: the regular poll, far beyond what is measured


def first_handshake(t: Topology, ip: str, since: float, limit: float = 30.0) -> float:
    """Seconds from `since` to the first TCP handshake with `ip` answered."""
    while time.monotonic() - since < limit:
        if inbound_handshake(t, ip, timeout=0.05):
            return time.monotonic() - since
    return float("inf")


def one_run(workdir: Path, nic_first: bool) -> float:
    with Topology.create([make_eni(1)]) as t:
        eni2 = make_eni(2)
        config = write_config(workdir / "config.toml", f"metadata_interval = {POLL}\n", 0o600)
        with serve_metadata(t, workdir) as svc, \
                run_daemon(t, workdir / "unused.json", workdir, config=config,
                           extra_args=("--metadata", svc.url)) as d:
            d.wait_ready(timeout=30)
            time.sleep(2.5)  # the start-up fetch is long past
            if nic_first:
                t.add_eni(eni2)
                time.sleep(3)
                start = time.monotonic()
                svc.set_document(build_metadata(t, enis=[t.eni("eth1"), eni2]))
            else:
                svc.set_document(build_metadata(t, enis=[t.eni("eth1"), eni2]))
                start = time.monotonic()
                t.add_eni(eni2)
            return first_handshake(t, eni2.ips[0], start)


def measure(runs: int) -> dict:
    figures = {}
    for name, nic_first in (("nic_first", True), ("listing_first", False)):
        times = []
        for i in range(runs):
            with tempfile.TemporaryDirectory(prefix="eni-bench-failover-") as tmp:
                times.append(one_run(Path(tmp), nic_first))
        figures[name] = times
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures = measure(args.runs)
    for name, label, since in (("nic_first", "NIC first, listed 3 s later", "the listing"),
                               ("listing_first", "listed first, then the NIC", "the NIC")):
        times = figures[name]
        print(f"  failover, {label}: first handshake {statistics.median(times) * 1000:.0f} ms "
              f"after {since} (median of {len(times)}; {min(times) * 1000:.0f}-"
              f"{max(times) * 1000:.0f} ms); goal <= 2000 ms")


if __name__ == "__main__":
    main()
