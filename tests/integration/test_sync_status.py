"""`eni-agent status`: desired vs observed per ENI, exit 0 only when in sync,
warnings about other tools on managed NICs; it never changes anything."""

from __future__ import annotations

from tests.harness.agent import Agent
from tests.harness.commands import ip
from tests.harness.enis import make_eni
from tests.harness.kernel import dumps, guest_state, table_of
from tests.harness.metadata import build_metadata


def test_status_is_in_sync_after_sync_even_with_a_pending_eni(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write(build_metadata(t, enis=[t.eni("eth1"), make_eni(3)]))

    before = agent.status("--json")  # nothing configured yet
    assert before.code == 3, str(before)
    assert before.json["result"] == "not-converged"
    assert before.eni("eth1")["state"] == "out-of-sync"
    assert len(before.eni("eth1")["changes"]) == 9  # and the ENI id as altname

    agent.converge()
    configured = dumps(guest_state(t))

    res = agent.status("--json")
    assert res.code == 0, str(res)
    assert res.json["result"] == "converged"
    assert res.states() == {"eth1": "in-sync", "00:16:3e:00:03:01": "pending"}
    text = agent.status()
    assert text.code == 0 and text.stdout.splitlines()[-1] == \
        "status: in sync: 1 in-sync, 1 pending", str(text)
    assert dumps(guest_state(t)) == configured


def test_status_reports_a_deleted_rule_as_out_of_sync_and_does_not_repair_it(topology_factory,
                                                                             tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    table = table_of(t, "eth1")
    ip(t.guest, "rule", "del", "from", "10.0.1.11", "lookup", table, "priority", 10000)
    drifted = dumps(guest_state(t))
    missing = f"add rule 10000: from 10.0.1.11 lookup {table}"

    res = agent.status("--json")

    assert res.code == 3, str(res)
    assert res.json["result"] == "not-converged"
    assert res.eni("eth1")["state"] == "out-of-sync"
    assert res.eni("eth1")["changes"] == [missing]
    assert res.eni("eth2")["state"] == "in-sync"
    text = agent.status()
    assert text.code == 3 and f"  needs: {missing}" in text.stdout.splitlines(), str(text)
    assert "status: NOT in sync" in text.stdout
    assert dumps(guest_state(t)) == drifted

    agent.converge()
    assert agent.status().code == 0


def test_status_warns_about_other_tools_on_a_managed_eni(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    # what a DHCP client or network manager would leave on the ENI (outside
    # its vswitch: one inside is followed, test_followed_addresses.py)
    ip(t.guest, "addr", "add", "10.9.9.99/24", "dev", "eth1")
    ip(t.guest, "route", "add", "default", "via", "10.0.1.253", "dev", "eth1", "onlink",
       "metric", "200")

    res = agent.status("--json")

    assert res.code == 0, str(res)  # warnings are not drift
    eth1 = res.eni("eth1")
    assert eth1["state"] == "in-sync"
    assert any(w.startswith("eth1 also holds 10.9.9.99/24, added by another tool: not routed")
               for w in eth1["warnings"]), eth1["warnings"]
    assert any("default route via eth1" in w for w in eth1["warnings"]), eth1["warnings"]
    text = agent.status()
    assert any(line.startswith("  warning: eth1 also holds 10.9.9.99/24")
               for line in text.stdout.splitlines()), str(text)
