"""Drift repair: something (a network manager, an admin) undoes part of the
configuration; the next `sync` puts back exactly what is missing, and traffic
that the drift broke flows again. The other ENI is not touched."""

from __future__ import annotations

import dataclasses
from typing import Callable

import pytest

from tests.harness.agent import Agent
from tests.harness.commands import ip
from tests.harness.enis import make_eni
from tests.harness.expect import sorted_rules
from tests.harness.kernel import addresses, is_up, owned_routes, owned_rules, table_of
from tests.harness.prober import (FAIL_TIMEOUT, assert_traffic, eni_ips, inbound_handshake,
                                  outbound_handshake)
from tests.harness.topology import Topology


@dataclasses.dataclass
class Drift:
    id: str
    cause: Callable[[Topology, int], None]  # (topo, eth1's table)
    broken: tuple[str, str]  # ("in"|"out", address): a probe the drift breaks
    repair: Callable[[int], list[str]]  # eth1's expected changes, given its table


def _routes(table: int) -> list[str]:
    return [f"add route 10.0.1.0/24 dev eth1 table {table}",
            f"add route default via 10.0.1.253 dev eth1 table {table}"]


DRIFTS = [
    Drift("rule-deleted",
          lambda t, n: ip(t.guest, "rule", "del", "from", "10.0.1.11", "lookup", n,
                          "priority", 10000),
          ("out", "10.0.1.11"),
          lambda n: [f"add rule 10000: from 10.0.1.11 lookup {n}"]),
    Drift("address-removed",
          lambda t, n: ip(t.guest, "addr", "del", "10.0.1.10/24", "dev", "eth1"),
          ("in", "10.0.1.10"),
          lambda n: ["add address 10.0.1.10/24 dev eth1"]),
    Drift("all-addresses-flushed",  # the kernel also drops every route through it
          lambda t, n: ip(t.guest, "addr", "flush", "dev", "eth1"),
          ("in", "10.0.1.11"),
          lambda n: ["add address 10.0.1.10/24 dev eth1", "add address 10.0.1.11/24 dev eth1",
                     *_routes(n)]),
    Drift("table-flushed",
          lambda t, n: ip(t.guest, "route", "flush", "table", n),
          ("out", "10.0.1.10"),
          _routes),
    Drift("default-route-hijacked",  # someone else's route, wearing the agent's mark
          lambda t, n: ip(t.guest, "route", "replace", "default", "via", "10.0.1.1", "dev",
                          "eth1", "onlink", "table", n, "proto", "234"),
          ("out", "10.0.1.10"),
          lambda n: [f"replace route default via 10.0.1.253 dev eth1 table {n}"]),
]


def _configuration(t: Topology) -> dict:
    """What sync owns, order-insensitive (a removed and re-added address
    changes the kernel's primary/secondary order, which does not matter)."""
    return {
        "rules": sorted_rules(owned_rules(t)),
        "routes": sorted(owned_routes(t), key=lambda r: (r["table"], r["dst"])),
        "addresses": {name: sorted((a["local"], a["prefixlen"], a.get("noprefixroute"))
                                   for a in addresses(t, name)) for name in ("eth1", "eth2")},
        "up": {name: is_up(t, name) for name in ("eth1", "eth2")},
    }


@pytest.mark.parametrize("drift", DRIFTS, ids=[d.id for d in DRIFTS])
def test_sync_repairs_drift_and_traffic_flows_again(topology_factory, tmp_path, drift):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    converged = _configuration(t)
    table = table_of(t, "eth1")

    drift.cause(t, table)
    direction, addr = drift.broken
    probe = inbound_handshake if direction == "in" else outbound_handshake
    assert not probe(t, addr, timeout=FAIL_TIMEOUT), "the drift should break traffic"
    assert _configuration(t) != converged

    res = agent.converge()

    assert res.eni("eth1")["state"] == "configured"
    assert res.eni("eth1")["changes"] == drift.repair(table)
    assert res.eni("eth2")["state"] == "in-sync"
    assert res.json["other_changes"] == []
    assert _configuration(t) == converged
    assert_traffic(t, ["10.0.0.5", *eni_ips(t)])


def test_an_eni_set_down_by_an_operator_stays_down_until_they_bring_it_up(
        topology_factory, tmp_path):
    """`ifdown eth1` is the operator's to do (issue 11): sync leaves a NIC it
    configured and someone set down exactly as it is, says so, and configures
    it again once it is brought up (the kernel dropped its routes meanwhile)."""
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    converged = _configuration(t)
    table = table_of(t, "eth1")

    ip(t.guest, "link", "set", "eth1", "down")
    left = _configuration(t)
    res = agent.converge()
    assert res.eni("eth1")["state"] == "down"
    assert res.eni("eth1")["changes"] == []
    assert "ip link set eth1 up" in res.eni("eth1")["reason"]
    assert res.eni("eth2")["state"] == "in-sync"
    assert _configuration(t) == left
    assert not is_up(t, "eth1")
    assert not inbound_handshake(t, "10.0.1.10", timeout=FAIL_TIMEOUT)
    assert agent.status().code == 0  # an operator's choice is not drift

    ip(t.guest, "link", "set", "eth1", "up")
    res = agent.converge()
    assert res.eni("eth1")["state"] == "configured"
    assert res.eni("eth1")["changes"] == _routes(table)
    assert _configuration(t) == converged
    assert_traffic(t, ["10.0.0.5", *eni_ips(t)])
