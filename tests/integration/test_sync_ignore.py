"""--ignore-mac / --ignore-interface, and the same in a config file: an
ignored NIC (a CNI's, another tool's) is never touched; one that becomes
ignored loses only what eni-agent had put on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.agent import Agent, write_config
from tests.harness.by_hand import configure_policy_routing_by_hand
from tests.harness.commands import get_sysctl, ip
from tests.harness.enis import make_eni
from tests.harness.kernel import (address_ips, addresses, is_up, owned_rules, routes_in_table,
                                  rules, table_of)
from tests.harness.prober import assert_traffic, eni_ips
from tests.harness.topology import Topology

ETH2_MAC = "00:16:3e:00:02:01"
OTHER_TOOL_TABLE = 1002


def _flags(*args: str):
    return lambda agent, tmp: ["sync", "--metadata", agent.metadata, *args]


def _config(text: str, with_metadata: bool = False):
    def argv(agent: Agent, tmp: Path) -> list:
        body = text + (f'metadata = "{agent.metadata}"\n' if with_metadata else "")
        cfg = write_config(tmp / "config.toml", body)  # mode 0600
        return ["sync", "--config", cfg] + ([] if with_metadata else ["--metadata", agent.metadata])
    return argv


WAYS = {
    "flag-ignore-mac-upper-case": _flags("--ignore-mac", ETH2_MAC.upper()),
    "flag-ignore-interface": _flags("--ignore-interface", "eth2"),
    "config-ignore-macs": _config(f'ignore_macs = ["{ETH2_MAC}"]\n'),
    "config-ignore-interfaces-glob": _config('ignore_interfaces = ["eth2*"]\n',
                                             with_metadata=True),
}


def _eth2_view(t: Topology) -> dict:
    """Everything on or for eth2, as the other tool left it."""
    return {
        "up": is_up(t, "eth2"),
        "addresses": addresses(t, "eth2"),
        "rules": [r for r in rules(t) if r.get("table") == str(OTHER_TOOL_TABLE)],
        "routes": routes_in_table(t, OTHER_TOOL_TABLE),
        "promote_secondaries": get_sysctl(t.guest, "net.ipv4.conf.eth2.promote_secondaries"),
    }


@pytest.mark.parametrize("way", list(WAYS))
def test_ignored_eni_is_not_touched(topology_factory, tmp_path, way):
    t = topology_factory([make_eni(1), make_eni(2)])
    configure_policy_routing_by_hand(t, "eth2", table=OTHER_TOOL_TABLE)  # another tool's NIC
    agent = Agent(t, tmp_path)
    agent.write()  # lists eth2 too
    before = _eth2_view(t)

    res = agent.run(*WAYS[way](agent, tmp_path), "--json")

    assert res.code == 0, str(res)
    assert res.eni("eth1")["state"] == "configured"
    assert res.eni(ETH2_MAC)["state"] == "ignored"
    assert res.eni(ETH2_MAC)["changes"] == []
    assert _eth2_view(t) == before
    assert not [r for r in owned_rules(t) if r["src"].startswith("10.0.2.")]
    assert_traffic(t, ["10.0.0.5", *eni_ips(t)])  # eth2 still through the other tool's table


def test_eni_that_becomes_ignored_loses_only_what_the_agent_put_on_it(topology_factory,
                                                                       tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    t2 = table_of(t, "eth2")
    ip(t.guest, "addr", "add", "10.0.2.99/24", "dev", "eth2")  # a user's

    res = agent.converge("--ignore-mac", ETH2_MAC)

    assert res.eni("eth1")["state"] == "in-sync"
    assert res.eni(ETH2_MAC)["state"] == "ignored"
    assert len(res.json["other_changes"]) == 7  # its 6 objects, and its id as altname
    assert address_ips(t, "eth2") == ["10.0.2.99"]
    assert routes_in_table(t, t2) == []
    assert not [r for r in owned_rules(t) if r["src"].startswith("10.0.2.")]
    assert_traffic(t, eni_ips(t, "eth1"))

    # from now on it is never touched again
    ip(t.guest, "addr", "add", "10.0.2.10/24", "dev", "eth2")
    res = agent.converge("--ignore-mac", ETH2_MAC)
    assert (res.eni("eth1")["state"], res.eni(ETH2_MAC)["state"]) == ("in-sync", "ignored")
    assert res.json["other_changes"] == []
    assert address_ips(t, "eth2") == ["10.0.2.99", "10.0.2.10"]
