"""On kernels before 5.18 an address cannot carry the agent's protocol mark.
With ENI_AGENT_ADDRESS_MARKS=0 the agent behaves as it does there: addresses
go in unmarked, and are recognised as its own through its marked rules. The
whole life cycle still holds, and a user's hand-added address is still left
alone."""

from __future__ import annotations

from tests.harness.agent import Agent
from tests.harness.commands import ip
from tests.harness.enis import make_eni
from tests.harness.kernel import (address_ips, address_protocols, dumps, guest_state,
                                  kernel_config, owned_rules)
from tests.harness.metadata import build_metadata
from tests.harness.prober import assert_traffic


def test_life_cycle_without_address_marks(topology_factory, tmp_path):
    t = topology_factory([make_eni(1, n_ips=3)])
    agent = Agent(t, tmp_path)
    agent.env["ENI_AGENT_ADDRESS_MARKS"] = "0"
    agent.write()
    before = dumps(kernel_config(t))
    ip(t.guest, "link", "set", "eth1", "up")
    ip(t.guest, "addr", "add", "10.0.1.99/24", "dev", "eth1")  # a user's, before the agent

    res = agent.converge()
    assert res.eni("eth1")["state"] in ("configured", "in-sync"), str(res)
    assert 234 not in address_protocols(t).values()  # nothing marked: as on an old kernel
    assert_traffic(t, ["10.0.0.5", *t.eni("eth1").ips])

    # idempotent, and its own addresses are not reported as another tool's
    configured = dumps(guest_state(t))
    res = agent.sync("--json")
    assert res.code == 0 and res.states() == {"eth1": "in-sync"}, str(res)
    assert dumps(guest_state(t)) == configured
    status = agent.run("status", "--json", "--metadata", str(agent.metadata))
    warnings = " ".join(status.json["enis"][0]["warnings"])
    assert "10.0.1.99" in warnings and "10.0.1.10/" not in warnings, warnings

    # an IP dropped from the document loses its address and its rule
    eni = t.eni("eth1")
    dropped = eni.ips[-1]
    doc = build_metadata(t)
    fields = doc["network"]["interfaces"]["macs"][eni.mac]
    fields["private-ipv4s"] = [i for i in fields["private-ipv4s"] if i != dropped]
    agent.write(doc)
    assert agent.sync().code == 0
    assert dropped not in address_ips(t, "eth1")
    assert dropped not in {r.get("src") for r in owned_rules(t)}

    # cleanup removes the agent's addresses, and only those
    assert agent.cleanup().code == 0
    assert address_ips(t, "eth1") == ["10.0.1.99"]
    assert owned_rules(t) == []
    ip(t.guest, "addr", "del", "10.0.1.99/24", "dev", "eth1")
    ip(t.guest, "link", "set", "eth1", "down")
    assert dumps(kernel_config(t)) == before
