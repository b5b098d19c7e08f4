"""`eni-agent cleanup` removes every address, route and rule marked with
protocol 234, and nothing else; a second cleanup and `--dry-run` change nothing."""

from __future__ import annotations

from tests.harness.agent import Agent
from tests.harness.commands import get_sysctl, ip, set_sysctls
from tests.harness.enis import make_eni
from tests.harness.kernel import (address_ips, address_protocols, dumps, guest_state,
                                  kernel_config, owned_routes, owned_rules)
from tests.harness.prober import assert_traffic


def test_cleanup_removes_exactly_what_sync_added_and_a_second_cleanup_is_a_no_op(
        topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    before_sync = dumps(kernel_config(t))
    agent.converge()
    assert len(owned_rules(t)) == 4 and len(owned_routes(t)) == 4

    res = agent.cleanup("--json")

    assert res.code == 0 and res.json["result"] == "converged", str(res)
    assert res.json["enis"] == []
    assert len(res.json["other_changes"]) == 14  # 4 rules, 4 routes, 4 addresses, 2 altnames
    assert all(c.startswith("remove ") for c in res.json["other_changes"])
    assert owned_rules(t) == [] and owned_routes(t) == []
    assert 234 not in address_protocols(t).values()
    # addresses, rules and routes are exactly what they were before the first sync
    assert dumps(kernel_config(t)) == before_sync
    assert_traffic(t, ["10.0.0.5"])

    after_cleanup = dumps(guest_state(t))
    res = agent.cleanup("--json")
    assert res.code == 0 and res.json["other_changes"] == [], str(res)
    assert dumps(guest_state(t)) == after_cleanup


def test_cleanup_dry_run_lists_everything_owned_and_changes_nothing(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    configured = dumps(guest_state(t))

    res = agent.cleanup("--dry-run")

    assert res.code == 0, str(res)
    lines = [line.strip() for line in res.stdout.splitlines()]
    assert lines[0] == "everything eni-agent owns:"
    assert sum(line.startswith("would remove rule 10000: from 10.0.1.") for line in lines) == 2
    assert sum(line.startswith("would remove route ") for line in lines) == 2
    assert "would remove address 10.0.1.10/24 dev eth1" in lines
    assert "would remove address 10.0.1.11/24 dev eth1" in lines
    assert dumps(guest_state(t)) == configured
    res = agent.cleanup("--dry-run", "--json")
    assert res.code == 0 and res.json["dry_run"] is True and len(res.json["other_changes"]) == 7
    assert dumps(guest_state(t)) == configured
    assert_traffic(t, ["10.0.1.10", "10.0.1.11"])


def test_cleanup_on_a_guest_never_synced_changes_nothing(topology_with_eni, tmp_path):
    t = topology_with_eni
    fresh = dumps(guest_state(t))

    res = Agent(t, tmp_path).cleanup("--json")

    assert res.code == 0 and res.json["other_changes"] == [], str(res)
    assert dumps(guest_state(t)) == fresh


def test_cleanup_keeps_a_hand_added_address_even_if_promote_secondaries_was_reset(
        topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    ip(t.guest, "addr", "add", "10.0.1.99/24", "dev", "eth1")  # secondary to 10.0.1.10
    # without promote_secondaries, deleting 10.0.1.10 would delete 10.0.1.99 too
    set_sysctls(t.guest, {"net.ipv4.conf.eth1.promote_secondaries": 0})

    res = agent.cleanup()

    assert res.code == 0, str(res)
    assert "  set promote_secondaries on eth1" in res.stdout.splitlines()
    assert address_ips(t, "eth1") == ["10.0.1.99"]
    assert get_sysctl(t.guest, "net.ipv4.conf.eth1.promote_secondaries") == "1"
