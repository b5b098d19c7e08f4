"""SIGTERM / SIGINT: the daemon exits 0 promptly, says STOPPING=1, and
leaves the network configured (a restart or an upgrade must not cut traffic)."""

from __future__ import annotations

import signal
import time

import pytest

from tests.harness.daemon import configured_daemon
from tests.harness.expect import eni_problems
from tests.harness.kernel import describe, guest_state, owned_rules
from tests.harness.prober import inbound_handshake, traffic_failures

EXIT_TIMEOUT = 2.0  # seconds; typically ~0.02 s


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_signal_exits_zero_and_leaves_the_network_configured(topology_with_eni, tmp_path, signum):
    t = topology_with_eni
    eni = t.eni("eth1")
    with configured_daemon(t, tmp_path) as d:
        time.sleep(0.2)  # let the daemon settle (it re-reads after its own changes)
        before = guest_state(t)

        sent = time.monotonic()
        d.send_signal(signum)
        assert d.wait_exit(timeout=EXIT_TIMEOUT) == 0
        print(f"{signum.name}: exited 0 in {time.monotonic() - sent:.3f}s")
        stopping = d.wait_notification(lambda n: n.fields.get("STOPPING") == "1", timeout=1)
        assert "left in place" in stopping.fields.get("STATUS", "")
        d.wait_log("stopped; network configuration left in place")
        assert d.log_lines(f"{signum.name} received") != []

    assert guest_state(t) == before, describe(t)
    assert eni_problems(t, eni) == [] and len(owned_rules(t)) == 2
    assert inbound_handshake(t, "10.0.1.10")
    assert traffic_failures(t, eni.ips) == []
