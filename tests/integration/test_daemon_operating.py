"""What an operator sees of a running daemon: `eni-agent status` shows the
daemon's own view and its age, a repair the daemon made appears in it and in
its counters, the metrics file parses, the ENI's id names its NIC, and its log
lines carry journald fields (read back from a real systemd-journald)."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.daemon import configured_daemon, eni_agent_cli
from tests.harness.expect import eni_table
from tests.harness.metadata import metadata_file
from tests.harness.journal import journal_entries, journald_available, with_journald
from tests.harness.commands import ip
from tests.harness.kernel import ip_json
from tests.harness.metadata import build_metadata


def status_json(t, d) -> dict:
    run = eni_agent_cli(t, d, "status", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


def metrics(path: Path) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(path.read_text())
            for s in family.samples}


def test_status_shows_the_daemons_view_and_its_repairs(topology_with_eni, tmp_path):
    t = topology_with_eni
    eni = t.eni("eth1")
    prom = tmp_path / "textfile" / "eni-agent.prom"
    config = tmp_path / "config.toml"
    config.write_text(f'metrics_file = "{prom}"\n')
    config.chmod(0o600)
    path = metadata_file(tmp_path, build_metadata(t))
    with configured_daemon(t, tmp_path, path, config=config) as d:
        state = Path(d.lock_path).parent / "state.json"
        d.wait_until(state.exists, what="the state file")
        assert stat.S_IMODE(state.stat().st_mode) == 0o600

        view = status_json(t, d)
        assert view["view"] == "daemon" and view["pid"] == d.python_pid()
        assert 0 <= view["age_seconds"] < 30
        (one,) = view["enis"]
        assert (one["mac"], one["link"], one["state"]) == (eni.mac, "eth1", "in-sync")
        assert view["metadata"]["last_fetch"]["outcome"] == "ok"
        text = eni_agent_cli(t, d, "status").stdout
        assert text.startswith(f"the running daemon's view (pid {d.python_pid()}, written ")

        # The ENI's id names its NIC.
        assert one["eni_id"] in ip_json(t.guest, "link", "show", "dev", "eth1")[0]["altnames"]

        # An admin deletes a rule: the daemon repairs it, and says so.
        table = eni_table(t, eni)
        ip(t.guest, "rule", "del", "from", eni.ips[0], "lookup", table, "priority", 10000)
        d.wait_until(lambda: status_json(t, d)["counters"]["repairs"] >= 1, 5,
                     what="the repair counted in the daemon's view")
        view = status_json(t, d)
        assert view["counters"]["changes"]["add_rule"] >= 3  # 2 at start, 1 repair
        assert view["enis"][0]["last_change"].startswith(f"add rule 10000: from {eni.ips[0]}")

        d.wait_until(lambda: prom.exists() and metrics(prom).get(
            ("eni_agent_repairs_total", ())) == view["counters"]["repairs"], 5,
            what="the repair in the metrics file")
        m = metrics(prom)
        assert m[("eni_agent_enis", (("state", "in-sync"),))] == 1
        assert m[("eni_agent_metadata_last_success_timestamp_seconds", ())] > time.time() - 60
        assert m[("eni_agent_last_pass_duration_seconds", ())] < 5
        assert stat.S_IMODE(prom.stat().st_mode) == 0o644

        fresh = eni_agent_cli(t, d, "status", "--fresh", "--json", "--metadata", str(path))
        assert json.loads(fresh.stdout)["command"] == "status"  # computed now, not the daemon's

    # The daemon is gone: status computes its own view again.
    run = eni_agent_cli(t, d, "status", "--json", "--metadata", str(path))
    assert json.loads(run.stdout)["command"] == "status" and "view" not in json.loads(run.stdout)


@pytest.mark.skipif(not journald_available(), reason="needs systemd-journald and journalctl")
def test_log_lines_about_an_eni_carry_journal_fields(topology_with_eni, tmp_path):
    t = topology_with_eni
    eni = t.eni("eth1")
    path = metadata_file(tmp_path, build_metadata(t))
    journal = tmp_path / "journal"

    def to_journald(d):
        d.argv = with_journald(journal, d.argv)

    with configured_daemon(t, tmp_path, path, prepare=to_journald) as d:
        table = eni_table(t, eni)
        ip(t.guest, "rule", "del", "from", eni.ips[0], "lookup", table, "priority", 10000)
        eni_id = build_metadata(t)["network"]["interfaces"]["macs"][eni.mac][
            "network-interface-id"]
        d.wait_until(lambda: [e for e in journal_entries(journal, f"ENI_ID={eni_id}")
                              if e.get("EVENT") == "repaired"], 10,
                     what="the repair's journal entry")
        entries = journal_entries(journal, f"ENI_ID={eni_id}")
        assert {e["EVENT"] for e in entries} >= {"configured", "repaired"}
        repaired = [e for e in entries if e["EVENT"] == "repaired"][0]
        assert (repaired["MAC"], repaired["IFNAME"], repaired["SYSLOG_IDENTIFIER"]) == (
            eni.mac, "eth1", "eni-agent")
        assert repaired["MESSAGE"].startswith(f"{eni_id} {eni.mac} eth1: add rule 10000")
        assert repaired["PRIORITY"] == "6"
