"""State eni-agent did not create is never modified or removed, by `sync` or
`cleanup`; a table someone else uses is a `conflict`; NICs that are not in the
document, or whose MAC is ambiguous, are left alone."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.harness.agent import Agent
from tests.harness.commands import get_sysctl, ip
from tests.harness.enis import make_eni
from tests.harness.expect import expected_rules, sorted_rules
from tests.harness.kernel import (address_ips, addresses, ip_json, is_up, main_routes,
                                  owned_routes, owned_rules, routes_in_table, rules, table_of,
                                  table_routes)
from tests.harness.metadata import build_metadata
from tests.harness.prober import assert_traffic, eni_ips
from tests.harness.topology import Topology

ETH1_MAC = "00:16:3e:00:01:01"
RT_TABLES_D = Path("/etc/iproute2/rt_tables.d")
# rt_tables.d is shared by the whole machine: tests that name a table there
# move eni-agent to this band, so they cannot turn another concurrently
# running test's default-band (10000 + ifindex) table into a conflict.
PRIVATE_BASE = 47000


@contextlib.contextmanager
def named_table(topo: Topology, table: int) -> Iterator[Path]:
    """/etc/iproute2/rt_tables.d/<unique>.conf naming ``table``, removed afterwards."""
    path = RT_TABLES_D / f"eni-t-{topo.tag}-{os.getpid()}.conf"
    try:
        path.write_text(f"{table} user-table-{topo.tag}\n")
        yield path
    finally:
        path.unlink(missing_ok=True)


def _find(entries: list[dict], **match) -> list[dict]:
    return [e for e in entries if all(e.get(k) == v for k, v in match.items())]


def test_foreign_rules_routes_and_addresses_survive_sync_and_cleanup(topology_with_eni,
                                                                      tmp_path):
    t = topology_with_eni
    g = t.guest
    agent = Agent(t, tmp_path)
    agent.write()
    # before the agent: a user's rule and a user's table
    ip(g, "rule", "add", "from", "10.9.9.9", "lookup", "100", "priority", "500")
    ip(g, "route", "add", "192.0.2.0/24", "via", "10.0.0.253", "dev", "eth0", "table", "100")
    user_rule = _find(rules(t), priority=500)
    user_table = table_routes(t, 100)
    dhcp_default = _find(main_routes(t), dst="default")
    eth0_prefix = _find(main_routes(t), dst="10.0.0.0/24")
    eth0_addresses = addresses(t, "eth0")
    assert len(user_rule) == len(user_table) == len(dhcp_default) == len(eth0_prefix) == 1

    agent.converge()
    t1 = table_of(t, "eth1")
    # after the agent: a user's address on the managed ENI, a user's route in its table
    ip(g, "addr", "add", "10.0.1.99/24", "dev", "eth1")
    ip(g, "route", "add", "198.51.100.0/24", "via", "10.0.1.253", "dev", "eth1", "table", t1)
    user_route_in_t1 = _find(table_routes(t, t1), dst="198.51.100.0/24")
    assert len(user_route_in_t1) == 1

    def foreign_state_is_intact(when: str) -> None:
        assert _find(rules(t), priority=500) == user_rule, when
        assert table_routes(t, 100) == user_table, when
        assert _find(main_routes(t), dst="default") == dhcp_default, when
        assert _find(main_routes(t), dst="10.0.0.0/24") == eth0_prefix, when
        assert addresses(t, "eth0") == eth0_addresses, when
        assert "10.0.1.99" in address_ips(t, "eth1"), when
        assert _find(table_routes(t, t1), dst="198.51.100.0/24") == user_route_in_t1, when

    res = agent.converge()  # the user's address is in the vswitch: followed by a rule
    assert res.eni("eth1")["followed"] == ["10.0.1.99/24"]
    assert agent.converge().eni("eth1")["state"] == "in-sync"
    foreign_state_is_intact("after sync")
    assert_traffic(t, ["10.0.0.5", *eni_ips(t)])

    res = agent.cleanup("--json")
    assert res.code == 0, str(res)
    assert owned_rules(t) == [] and owned_routes(t) == []
    # the user's address was secondary to 10.0.1.10: promote_secondaries kept it
    assert address_ips(t, "eth1") == ["10.0.1.99"]
    foreign_state_is_intact("after cleanup")
    assert_traffic(t, ["10.0.0.5"])


@contextlib.contextmanager
def route_deletions(topo: Topology) -> Iterator[Callable[[], list[str]]]:
    """The guest's RTM_DELROUTE notifications while the block runs, as
    `ip monitor route` prints them ("Deleted ..."), read with the returned
    function once the block is done. A route the kernel flushes with its
    link's last address sends none: such a line means someone deleted it."""
    monitor = subprocess.Popen(["ip", "-n", topo.guest, "monitor", "route"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:
        for line in monitor.stdout:
            lines.append(line)

    def count(text: str) -> int:
        return sum(line.startswith(text) for line in list(lines))

    def wait_for(text: str, seen: int = 0) -> None:
        deadline = time.monotonic() + 10
        while count(text) <= seen:
            assert time.monotonic() < deadline, f"ip monitor route: no {text!r} in {lines}"
            time.sleep(0.05)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    marker = ("unreachable", "203.0.113.77", "table", "4242")
    try:
        # The monitor listens once it prints the marker's addition (deleted
        # and added again until then: replacing an identical route is
        # silent), and has printed all that came before once it prints the
        # marker's deletion: netlink notifications arrive in order.
        deadline = time.monotonic() + 10
        while not count("unreachable 203.0.113.77"):
            assert time.monotonic() < deadline, f"ip monitor route is silent: {lines}"
            ip(topo.guest, "route", "del", *marker, check=False)
            ip(topo.guest, "route", "add", *marker)
            time.sleep(0.1)
        yield lambda: [line for line in lines
                       if line.startswith("Deleted ") and "203.0.113.77" not in line]
        seen = count("Deleted unreachable 203.0.113.77")
        ip(topo.guest, "route", "del", *marker)
        wait_for("Deleted unreachable 203.0.113.77", seen)
    finally:
        monitor.terminate()
        monitor.wait(timeout=10)
        reader.join(timeout=10)
        ip(topo.guest, "route", "del", *marker, check=False)


def test_cleanup_never_deletes_a_user_route_in_the_eni_table_even_when_the_kernel_drops_it(
        topology_with_eni, tmp_path):
    """docs/routing.md: eni-agent never touches a user's route in its table; but when
    cleanup removes the ENI's last address, the kernel drops every route
    through that NIC. The route goes, silently (no RTM_DELROUTE); the
    notifications show cleanup deleted its own routes and not the user's."""
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    t1 = table_of(t, "eth1")
    ip(t.guest, "route", "add", "198.51.100.0/24", "via", "10.0.1.253", "dev", "eth1",
       "table", t1)
    assert _find(table_routes(t, t1), dst="198.51.100.0/24")

    with route_deletions(t) as deleted:
        res = agent.cleanup("--json")
    assert res.code == 0, str(res)
    assert owned_rules(t) == [] and owned_routes(t) == []
    assert table_routes(t, t1) == []  # the kernel dropped the user's route
    deleted_routes = " ".join(deleted())
    assert f"default via 10.0.1.253 dev eth1 table {t1}" in deleted_routes, deleted()
    assert "198.51.100.0/24" not in deleted_routes, deleted()
    removed = " ".join(res.json["other_changes"])
    assert "198.51.100.0/24" not in removed, removed
    assert "remove address 10.0.1.10/24" in removed


def test_unlisted_nic_stays_down_and_unconfigured(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(3)])
    agent = Agent(t, tmp_path)
    agent.write(build_metadata(t, enis=[t.eni("eth1")]))

    res = agent.converge()
    agent.converge()

    assert [e["link"] for e in res.json["enis"]] == ["eth1"]
    assert not is_up(t, "eth3")
    assert addresses(t, "eth3") == []
    assert get_sysctl(t.guest, "net.ipv4.conf.eth3.promote_secondaries") == "0"
    t3 = str(table_of(t, "eth3"))
    assert not [r for r in ip_json(t.guest, "-N", "rule") if r["table"] == t3]
    assert not [r for r in ip_json(t.guest, "route", "show", "table", "all")
                if r.get("dev") == "eth3" or r.get("table") == t3]
    assert_traffic(t, eni_ips(t, "eth1"))


def test_table_named_in_rt_tables_d_is_a_conflict_and_that_eni_gets_nothing(topology_factory,
                                                                             tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    t1 = table_of(t, "eth1", base=PRIVATE_BASE)

    with named_table(t, t1):
        res = agent.sync("--json", "--table-base", PRIVATE_BASE)

        assert res.code == 3, str(res)
        eth1 = res.eni("eth1")
        assert eth1["state"] == "conflict"
        assert eth1["changes"] == [] and f"table {t1}" in eth1["errors"][0]
        assert res.eni("eth2")["state"] == "configured"
        assert not is_up(t, "eth1") and addresses(t, "eth1") == []
        assert not [r for r in owned_rules(t) if r["table"] == str(t1)]
        assert routes_in_table(t, t1) == []
    assert_traffic(t, eni_ips(t, "eth2"))


@pytest.mark.parametrize("user_object", ["route", "rule"])
def test_table_already_used_by_a_foreign_route_or_rule_is_a_conflict(topology_with_eni, tmp_path,
                                                                     user_object):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    t1 = table_of(t, "eth1")
    if user_object == "route":
        ip(t.guest, "route", "add", "192.0.2.0/24", "via", "10.0.0.253", "dev", "eth0",
           "table", t1)
    else:
        ip(t.guest, "rule", "add", "fwmark", "7", "lookup", t1, "priority", "600")
    before_rules, before_routes = rules(t), routes_in_table(t, t1)

    res = agent.sync("--json")

    assert res.code == 3, str(res)
    assert res.eni("eth1")["state"] == "conflict"
    assert addresses(t, "eth1") == [] and owned_rules(t) == [] and owned_routes(t) == []
    assert (rules(t), routes_in_table(t, t1)) == (before_rules, before_routes)


def _second_link_with_the_eni_mac(t: Topology) -> None:
    # Another unenslaved link carrying eth1's MAC (what a VLAN or ipvlan
    # sub-interface does; those kernel modules are not available here, and a
    # passthru macvlan would swallow eth1's traffic). It stays down.
    ip(t.guest, "link", "add", "ethx", "address", ETH1_MAC, "type", "veth",
       "peer", "name", "ethx-peer")


def test_ambiguous_mac_is_reported_and_left_unconfigured(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    _second_link_with_the_eni_mac(t)

    res = agent.sync("--json")

    assert res.code == 3, str(res)
    assert res.eni(ETH1_MAC)["state"] == "ambiguous"
    assert "ethx" in res.eni(ETH1_MAC)["reason"] and "eth1" in res.eni(ETH1_MAC)["reason"]
    for name in ("eth1", "ethx"):
        assert not is_up(t, name) and addresses(t, name) == []
    assert owned_rules(t) == [] and owned_routes(t) == []


def test_eni_that_becomes_ambiguous_keeps_its_configuration(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    rules_before, routes_before = owned_rules(t), owned_routes(t)
    _second_link_with_the_eni_mac(t)

    res = agent.sync("--json")

    assert res.code == 3, str(res)
    assert res.eni(ETH1_MAC)["state"] == "ambiguous"
    assert address_ips(t, "eth1") == ["10.0.1.10", "10.0.1.11"], res.json["other_changes"]
    assert (owned_rules(t), owned_routes(t)) == (rules_before, routes_before)
    assert_traffic(t, eni_ips(t))


def test_eni_whose_table_becomes_named_keeps_its_configuration(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge("--table-base", PRIVATE_BASE)
    t1 = table_of(t, "eth1", base=PRIVATE_BASE)
    rules_before = sorted_rules(owned_rules(t))
    assert rules_before == sorted_rules(expected_rules(t.eni("eth1").ips, t1))

    with named_table(t, t1):
        res = agent.sync("--json", "--table-base", PRIVATE_BASE)

        assert res.code == 3, str(res)
        assert res.eni("eth1")["state"] == "conflict"
        assert address_ips(t, "eth1") == ["10.0.1.10", "10.0.1.11"], res.json["other_changes"]
        assert sorted_rules(owned_rules(t)) == rules_before
        assert len(routes_in_table(t, t1)) == 2
    assert_traffic(t, eni_ips(t))


def test_agent_route_replaced_by_another_tool_is_not_clobbered_and_sync_reports_failure(
        topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    t1 = table_of(t, "eth1")
    # another tool replaces the default route of the ENI table (no protocol 234)
    ip(t.guest, "route", "replace", "default", "via", "10.0.1.1", "dev", "eth1", "onlink",
       "table", t1)
    theirs = _find(table_routes(t, t1), dst="default")

    res = agent.sync("--json")

    assert res.code == 3, str(res)
    eth1 = res.eni("eth1")
    assert eth1["state"] == "failed"
    assert eth1["errors"] == [f"add route default via 10.0.1.253 dev eth1 table {t1}: "
                              "already present but not owned by eni-agent"]
    assert _find(table_routes(t, t1), dst="default") == theirs
    status = agent.status("--json")
    assert status.code == 3 and status.eni("eth1")["state"] == "out-of-sync", str(status)
