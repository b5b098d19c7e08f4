"""READY=1 must not depend on every ENI being configurable.

The shipped unit is Type=notify with TimeoutStartSec=90s and Restart=always:
a daemon that never sends READY=1 is killed after 90 s and restarted, over
and over, and every unit ordered after network-online.target waits 90 s. An
ENI in `conflict` (its table used by someone else; docs/commands.md: "nothing
is added or removed") is an operator's problem that no retry can fix; the daemon should
report it in STATUS and still become ready once it has applied what it can.
"""

from __future__ import annotations

from tests.harness.commands import ip
from tests.harness.daemon import run_daemon
from tests.harness.enis import make_eni
from tests.harness.expect import eni_problems, eni_table
from tests.harness.kernel import describe, ip_json
from tests.harness.metadata import build_metadata, metadata_file


def _start_with_a_conflicting_eni(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    # Someone else's route in the table eth2 would get: eth2 is `conflict`.
    table = eni_table(t, t.eni("eth2"))
    ip(t.guest, "route", "add", "192.0.2.0/24", "dev", "eth0", "table", table)
    return t, metadata_file(tmp_path, build_metadata(t))


def test_conflicting_eni_is_left_alone_and_reported_while_the_others_are_configured(
        topology_factory, tmp_path):
    t, path = _start_with_a_conflicting_eni(topology_factory, tmp_path)
    with run_daemon(t, path, tmp_path) as d:
        note = d.wait_notification(lambda n: "conflict" in n.fields.get("STATUS", ""))
        assert note.fields["STATUS"].startswith("NOT converged: 1 conflict, 1 in sync")
        assert eni_problems(t, t.eni("eth1")) == [], describe(t)
        assert not [r for r in ip_json(t.guest, "rule") if r.get("src", "").startswith("10.0.2.")]
        assert d.log_lines("eth2: table") and d.log_lines("is already used by another owner")
        assert d.alive()


def test_ready_is_sent_even_if_one_eni_is_in_conflict(topology_factory, tmp_path):
    t, path = _start_with_a_conflicting_eni(topology_factory, tmp_path)
    with run_daemon(t, path, tmp_path) as d:
        d.wait_until(lambda: not eni_problems(t, t.eni("eth1")), 10)
        ready = d.wait_ready(timeout=2)
        assert "1 conflict" in ready.fields["STATUS"]
