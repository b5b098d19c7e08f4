"""Drift under a running daemon (a network manager or an admin undoing part
of the configuration) is repaired from the netlink event, within about a
second, not at the next periodic resync (30 s by default)."""

from __future__ import annotations

import time

import pytest

from tests.harness.commands import ip
from tests.harness.expect import eni_problems, eni_table
from tests.harness.kernel import describe
from tests.harness.prober import traffic_failures
from tests.harness.topology import Topology

REPAIR_TIMEOUT = 3.0  # seconds: generous; the repair typically takes well under 0.2 s


def delete_rule(t: Topology, table: int) -> str:
    ip(t.guest, "rule", "del", "from", "10.0.1.10", "lookup", table, "priority", 10000)
    return "add rule 10000: from 10.0.1.10"


def flush_table(t: Topology, table: int) -> str:
    ip(t.guest, "route", "flush", "table", table)
    return "add route default via 10.0.1.253"


def delete_address(t: Topology, table: int) -> str:
    ip(t.guest, "addr", "del", "10.0.1.11/24", "dev", "eth1")
    return "add address 10.0.1.11/24"


@pytest.mark.parametrize("drift", [delete_rule, flush_table, delete_address],
                         ids=lambda f: f.__name__)
def test_drift_is_repaired_promptly(topology_with_eni, daemon_with_eni, drift):
    t, d = topology_with_eni, daemon_with_eni
    eni = t.eni("eth1")
    repair = drift(t, eni_table(t, eni))  # raises if the drift itself failed
    took = d.wait_until(lambda: not eni_problems(t, eni), REPAIR_TIMEOUT,
                        what=f"repair after {drift.__name__}")
    print(f"{drift.__name__}: repaired in {took:.3f}s")
    d.wait_log(repair, count=2)  # once at start, once as the repair, naming its trigger
    assert d.log_lines(repair)[-1].endswith(" event)"), d.log_lines(repair)
    assert eni_problems(t, eni) == [], describe(t)
    assert traffic_failures(t, eni.ips) == []
    assert d.alive()


def test_an_eni_set_down_is_left_down_then_configured_once_brought_up(topology_with_eni,
                                                                     daemon_with_eni):
    """An operator's `ifdown` is theirs: the daemon does not undo it, and
    repairs the routes the kernel dropped once the NIC is brought up."""
    t, d = topology_with_eni, daemon_with_eni
    eni = t.eni("eth1")
    ip(t.guest, "link", "set", "eth1", "down")
    d.wait_log("was set down after eni-agent configured it")
    time.sleep(1.0)  # time enough to have undone it
    assert "state DOWN" in ip(t.guest, "link", "show", "eth1").stdout
    assert len(d.log_lines("set link eth1 up")) == 1  # at start only: not undone
    ip(t.guest, "link", "set", "eth1", "up")
    took = d.wait_until(lambda: not eni_problems(t, eni), REPAIR_TIMEOUT,
                        what="configured after the NIC was brought up")
    print(f"brought up: configured in {took:.3f}s")
    assert traffic_failures(t, eni.ips) == []
    assert d.alive()


def quiet_status_count(d, quiet: float = 0.5, timeout: float = 5.0) -> int:
    """The number of STATUS notifications once none came for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    count = len(d.messages("STATUS"))
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = len(d.messages("STATUS"))
        if now == count:
            return count
        count = now
    raise AssertionError("the daemon never went quiet")


def test_a_repair_takes_one_pass(topology_with_eni, daemon_with_eni):
    """The notifications of the agent's own changes carry its netlink port:
    the pass that made them already verified their effect, so they are not
    a reason for another (each pass sends STATUS)."""
    t, d = topology_with_eni, daemon_with_eni
    eni = t.eni("eth1")
    before = quiet_status_count(d)
    delete_rule(t, eni_table(t, eni))
    d.wait_until(lambda: not eni_problems(t, eni), REPAIR_TIMEOUT, what="repair")
    assert quiet_status_count(d) - before == 1, \
        [n.fields.get("STATUS") for n in d.messages("STATUS")][before:]
