"""One ENI whose own metadata is invalid is left exactly as it is, and the
others are configured (issue 12 §4, the kernel side).

The exit code (4) and the report's `invalid` state belong to the command
line; here only the kernel is checked, read independently of the agent.
"""

from __future__ import annotations

import os

import pytest

from .agent import Agent, assert_traffic, owned_rules, table_of
from .netns import build_metadata, ip_json, make_eni, outbound_handshake

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespace tests need root"),
]


def link_state(t, ifname: str) -> dict:
    """What eth<N> carries: its addresses, its table's routes, the rules to its table."""
    table = str(table_of(t, ifname))
    addresses = sorted(a["local"] for link in ip_json(t.guest, "addr", "show", "dev", ifname)
                       for a in link.get("addr_info", []) if a.get("family") == "inet")
    routes = ip_json(t.guest, "-N", "route", "show", "table", table)
    rules = [r for r in owned_rules(t) if r["table"] == table]
    return {"addresses": addresses, "routes": routes, "rules": rules}


def test_an_invalid_eni_keeps_its_state_while_a_valid_one_is_configured(topology_factory,
                                                                          tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write(build_metadata(t, [t.eni("eth1")]))
    agent.converge()
    before = link_state(t, "eth1")
    assert before["rules"] and before["routes"] and len(before["addresses"]) == 2

    doc = build_metadata(t)  # eth2 listed now, and eth1's entry broken
    entry = doc["network"]["interfaces"]["macs"][t.eni("eth1").mac]
    entry["gateway"] = "10.0.9.253"  # outside its vswitch
    entry["private-ipv4s"] = ["10.0.1.10"]  # would remove 10.0.1.11, were it valid
    agent.write(doc)
    res = agent.sync("--json")

    assert "Traceback" not in res.stderr
    assert link_state(t, "eth1") == before
    assert_traffic(t, list(t.eni("eth1").ips))  # still carries its traffic
    assert link_state(t, "eth2")["rules"]
    assert all(outbound_handshake(t, ip) for ip in t.eni("eth2").ips)
