"""`manage_only` (issue 12 §8): on a host where a CNI (Terway) owns some ENIs,
eni-agent configures only the ENIs named by MAC or id. Every other one is
`ignored`, and left exactly as it is: even the state eni-agent itself put on
it before the setting was made stays, whatever its metadata now says."""

from __future__ import annotations

import pytest

from tests.harness.agent import Agent, write_config
from tests.harness.commands import ip
from tests.harness.enis import make_eni
from tests.harness.kernel import guest_state, is_up, owned_rules, table_of
from tests.harness.metadata import build_metadata
from tests.harness.prober import assert_traffic, outbound_handshake


def state_of(t, ifname: str) -> dict:
    """Everything in the guest about one NIC: its link, addresses, its table's
    routes and the rules into that table."""
    state = guest_state(t)
    table = str(table_of(t, ifname))
    return {
        "links": [l for l in state["links"] if l["ifname"] == ifname],
        "addresses": [a for a in state["addresses"] if a["ifname"] == ifname],
        "routes": [r for r in state["routes"] if r.get("dev") == ifname],
        "rules": [r for r in state["rules"] if r.get("table") == table],
    }


@pytest.mark.parametrize("named", ["eni-fourth", "00:16:3E:00:03:01"], ids=["by id", "by MAC"])
def test_an_eni_not_named_is_left_exactly_as_it_is(topology_factory, tmp_path, named):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()  # before the setting: eth1 and eth2 are the agent's
    eth1_before, eth2_before = state_of(t, "eth1"), state_of(t, "eth2")
    assert eth1_before["rules"] and eth2_before["addresses"]

    # Terway takes eth1 and eth2 over; eth3 (eni-fourth: make_eni counts the primary) is
    # eni-agent's
    t.add_eni(make_eni(3))
    doc = build_metadata(t)
    macs = doc["network"]["interfaces"]["macs"]
    macs[t.eni("eth1").mac]["private-ipv4s"] = [t.eni("eth1").ips[0]]  # an IP taken back
    del macs[t.eni("eth2").mac]  # listed no more, NIC still there
    agent.write(doc)
    config = write_config(tmp_path / "c.toml", f'manage_only = ["{named}"]\n')

    res = agent.converge("--config", config)

    # an ignored ENI is reported by MAC, as with ignore_macs
    assert res.states() == {t.eni("eth1").mac: "ignored", "eth3": "configured"}
    assert res.eni(t.eni("eth1").mac)["reason"] == "not named in manage_only"
    assert state_of(t, "eth1") == eth1_before
    assert state_of(t, "eth2") == eth2_before
    assert_traffic(t, [*t.eni("eth1").ips, *t.eni("eth2").ips, *t.eni("eth3").ips])

    status = agent.status("--json", "--config", config)
    assert status.code == 0 and status.json["result"] == "converged", str(status)


def test_an_eni_not_named_that_the_agent_never_touched_stays_down(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    config = write_config(tmp_path / "c.toml", 'manage_only = ["eni-second"]\n')
    before = state_of(t, "eth2")

    res = agent.converge("--config", config)

    assert res.states() == {"eth1": "configured", t.eni("eth2").mac: "ignored"}
    assert state_of(t, "eth2") == before and not is_up(t, "eth2")
    assert outbound_handshake(t, t.eni("eth1").ips[0])
    assert {r["table"] for r in owned_rules(t)} == {str(10000 + int(
        __import__("json").loads(ip(t.guest, "-j", "link", "show", "eth1").stdout)[0]
        ["ifindex"]))}


def test_terway_rules_without_manage_only_are_warned_about(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    agent = Agent(t, tmp_path)
    agent.write()
    # Terway's rules: to a pod lookup main at 512, from a pod lookup its ENI's table at 2048
    ip(t.guest, "rule", "add", "to", "10.0.1.99", "lookup", "main", "priority", "512")
    ip(t.guest, "rule", "add", "from", "10.0.1.99", "lookup", "1003", "priority", "2048")

    status = agent.status("--json")
    (warning,) = status.json["warnings"]
    assert "Terway" in warning and "manage_only" in warning
    assert f"warning: {warning}" in agent.status().stdout

    config = write_config(tmp_path / "c.toml", 'manage_only = ["eni-second"]\n')
    assert agent.status("--json", "--config", config).json["warnings"] == []
