"""A second `sync` changes nothing; `sync --dry-run` prints the plan and changes nothing."""

from __future__ import annotations

from tests.harness.agent import Agent
from tests.harness.commands import get_sysctl, ip
from tests.harness.enis import make_eni
from tests.harness.kernel import dumps, guest_state, table_of
from tests.harness.prober import assert_traffic, eni_ips


def test_second_sync_reports_in_sync_and_leaves_kernel_state_byte_for_byte_equal(
        topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    before = dumps(guest_state(t))

    res = agent.converge()

    assert res.states() == {"eth1": "in-sync", "eth2": "in-sync"}
    assert [(e["changes"], e["errors"]) for e in res.json["enis"]] == [([], []), ([], [])]
    assert res.json["other_changes"] == [] and res.json["errors"] == []
    assert dumps(guest_state(t)) == before

    text = agent.sync()  # the human form says the same
    assert text.code == 0, str(text)
    t1, t2 = table_of(t, "eth1"), table_of(t, "eth2")
    assert text.stdout.splitlines() == [
        f"eni-second 00:16:3e:00:01:01 eth1 table {t1}: in-sync",
        f"eni-third 00:16:3e:00:02:01 eth2 table {t2}: in-sync",
        "sync: converged: 2 in-sync",
    ]
    assert dumps(guest_state(t)) == before
    assert_traffic(t, eni_ips(t))


def test_dry_run_prints_the_plan_and_changes_nothing(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    before = dumps(guest_state(t))
    table = table_of(t, "eth1")

    res = agent.sync("--dry-run")

    assert res.code == 0, str(res)
    lines = [line.strip() for line in res.stdout.splitlines()]
    assert lines[0] == f"eni-second 00:16:3e:00:01:01 eth1 table {table}: would-change"
    for change in ["set promote_secondaries on eth1",
                   "set link eth1 up",
                   "add address 10.0.1.10/24 dev eth1",
                   "add address 10.0.1.11/24 dev eth1",
                   f"add route 10.0.1.0/24 dev eth1 table {table}",
                   f"add route default via 10.0.1.253 dev eth1 table {table}",
                   f"add rule 10000: from 10.0.1.10 lookup {table}",
                   f"add rule 10000: from 10.0.1.11 lookup {table}"]:
        assert f"would {change}" in lines, change
    assert lines[-1] == "sync: dry run, nothing changed: 1 would-change"
    assert dumps(guest_state(t)) == before
    assert get_sysctl(t.guest, "net.ipv4.conf.eth1.promote_secondaries") == "0"

    res = agent.sync("--dry-run", "--json")
    assert res.code == 0 and res.json["dry_run"] is True, str(res)
    assert res.eni("eth1")["state"] == "would-change"
    assert len(res.eni("eth1")["changes"]) == 9  # 8 above, and the ENI id as altname
    assert dumps(guest_state(t)) == before


def test_dry_run_after_drift_lists_only_the_repair_and_changes_nothing(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    table = table_of(t, "eth1")
    ip(t.guest, "rule", "del", "from", "10.0.1.11", "lookup", table, "priority", 10000)
    drifted = dumps(guest_state(t))

    res = agent.sync("--dry-run", "--json")

    assert res.code == 0, str(res)
    assert res.eni("eth1")["state"] == "would-change"
    assert res.eni("eth1")["changes"] == [f"add rule 10000: from 10.0.1.11 lookup {table}"]
    assert dumps(guest_state(t)) == drifted
