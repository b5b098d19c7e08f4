"""Verification by asking the kernel: what defeats the agent's configuration
with every object of it in place is found, named, and fails the ENI (exit 3).

Three defeats, each leaving every ENI address dead (the harness's strict
rp_filter router drops the replies, or the guest takes no packet at all):
a foreign rule looked up first (`priority 100 from all lookup main`), a
foreign rule at the agent's priority that came before its rules, and the
local table's routes flushed (`ip route flush table all`).
"""

from __future__ import annotations

import time


from tests.harness.agent import Agent
from tests.harness.prober import traffic_failures
from tests.harness.daemon import run_daemon
from tests.harness.metadata import metadata_file
from tests.harness.commands import ip
from tests.harness.enis import make_eni, primary_eni
from tests.harness.metadata import build_metadata


ETH1_IPS = ["10.0.1.10", "10.0.1.11"]
BOTH_WAYS = ["host -> 10.0.1.10", "10.0.1.10 -> host"]


def test_a_foreign_rule_before_the_agents_is_named_and_fails_status_and_sync(topology_factory,
                                                                             tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    assert agent.status().code == 0

    ip(t.guest, "rule", "add", "priority", 100, "from", "all", "lookup", "main")
    assert traffic_failures(t, ["10.0.1.10"]) == BOTH_WAYS  # dead, every object in place

    status = agent.status("--json")
    assert status.code == 3, str(status)
    assert status.json["result"] == "not-converged"
    eth1 = status.eni("eth1")
    assert eth1["state"] == "failed" and eth1["changes"] == []
    assert any("10.0.1.10, 10.0.1.11" in e and "leave through eth0" in e
               and "rule 100: from all lookup main" in e and "(not eni-agent's)" in e
               for e in eth1["errors"]), eth1["errors"]
    text = agent.status()
    assert text.stdout.splitlines()[-1].startswith("status: NOT in sync"), str(text)

    sync = agent.sync("--json")
    assert sync.code == 3, str(sync)
    assert sync.states() == {"eth1": "failed", "eth2": "failed"}

    ip(t.guest, "rule", "del", "priority", 100, "from", "all", "lookup", "main")
    assert agent.status().code == 0
    assert traffic_failures(t, ETH1_IPS) == []


def test_a_foreign_rule_for_one_address_fails_only_that_address(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    ip(t.guest, "rule", "add", "priority", 100, "from", "10.0.1.11", "lookup", "main")

    res = agent.status("--json")

    assert res.code == 3, str(res)
    errors = res.eni("eth1")["errors"]
    assert errors and all("replies from 10.0.1.11 to" in e for e in errors), errors
    assert any("rule 100: from 10.0.1.11 lookup main" in e for e in errors), errors
    assert traffic_failures(t, ETH1_IPS) == ["host -> 10.0.1.11", "10.0.1.11 -> host"]


def test_a_foreign_rule_at_the_agents_priority_that_came_first_is_named(topology_with_eni,
                                                                         tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    # There before the agent's rules (an image's network config at boot):
    # among rules of one priority, the kernel looks up the older first.
    ip(t.guest, "rule", "add", "priority", 10000, "from", "all", "lookup", "main")

    res = agent.sync("--json")

    assert res.code == 3, str(res)
    eth1 = res.eni("eth1")
    assert eth1["state"] == "failed"
    assert any("rule 10000: from all lookup main" in e for e in eth1["errors"]), eth1["errors"]
    assert traffic_failures(t, ["10.0.1.10"]) == BOTH_WAYS


def test_the_local_tables_routes_flushed_are_named_and_fail_sync(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()

    ip(t.guest, "route", "flush", "table", "all")
    assert "host -> 10.0.1.10" in traffic_failures(t, ["10.0.1.10"])

    status = agent.status("--json")
    assert status.code == 3, str(status)
    sync = agent.sync("--json")  # puts its own routes back; the local table's are not its own
    assert sync.code == 3, str(sync)
    errors = sync.eni("eth1")["errors"]
    assert any("the local table has no route for 10.0.1.10, 10.0.1.11" in e for e in errors), \
        errors

    for address in ETH1_IPS:  # the operator's way out: the address again, with its route
        ip(t.guest, "addr", "del", f"{address}/24", "dev", "eth1")
    assert agent.sync().code == 0
    assert traffic_failures(t, ETH1_IPS) == []


def test_the_daemon_logs_a_defeat_once_and_reports_it(topology_with_eni, tmp_path):
    t = topology_with_eni
    doc = metadata_file(tmp_path, build_metadata(t))
    with run_daemon(t, doc, tmp_path, resync_interval=1) as daemon:
        daemon.wait_ready()
        ip(t.guest, "rule", "add", "priority", 100, "from", "all", "lookup", "main")
        daemon.wait_log("rule 100: from all lookup main", timeout=10)  # the periodic resync's
        daemon.wait_notification(lambda n: "NOT converged" in n.raw, timeout=10)
        time.sleep(3.5)  # three more passes (resync every second) find it again
        found = daemon.log_lines("rule 100: from all lookup main")
        # Once. Only replies beyond the gateway are defeated: with subnet_routes
        # (the daemon's default config here), main itself sends replies to the
        # ENI's vswitch through the ENI, from its address.
        assert len(found) == 1, daemon.log_text()
        assert "beyond the gateway" in found[0]


def test_an_ipv6_rule_before_the_agents_fails_the_ipv6_addresses_only(topology_factory,
                                                                      tmp_path):
    t = topology_factory([make_eni(1, n_ipv6=2)], ipv6=True, primary=primary_eni(ipv6=True))
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()  # right after adding the IPv6 addresses, their local routes are there
    assert agent.status().code == 0

    ip(t.guest, "-6", "rule", "add", "priority", 100, "from", "all", "lookup", "main")
    res = agent.status("--json")

    assert res.code == 3, str(res)
    errors = res.eni("eth1")["errors"]
    assert errors and all("replies from 2001:db8:1::10, 2001:db8:1::11 to" in e
                          and "rule 100: from all (IPv6) lookup main" in e for e in errors), errors
