"""MACs match case-insensitively: a document with upper-case MACs (the ENI
keys and the top-level `mac`) configures exactly what a lower-case one does."""

from __future__ import annotations

from tests.harness.agent import Agent
from tests.harness.enis import make_eni
from tests.harness.expect import expected_rules, sorted_rules
from tests.harness.kernel import dumps, guest_state, owned_rules, table_of
from tests.harness.metadata import build_metadata
from tests.harness.prober import assert_traffic, eni_ips


def _upper(doc: dict) -> dict:
    macs = doc["network"]["interfaces"]["macs"]
    return {**doc, "mac": doc["mac"].upper(),
            "network": {"interfaces": {"macs": {m.upper(): f for m, f in macs.items()}}}}


def test_upper_case_macs_configure_exactly_what_lower_case_macs_do(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    lower = build_metadata(t)
    upper = _upper(lower)
    assert "00:16:3E:00:01:01" in upper["network"]["interfaces"]["macs"]

    agent.write(upper)
    res = agent.converge()
    # the primary (top-level `mac`, upper-case too) is recognised and not managed
    assert res.states() == {"eth1": "configured", "eth2": "configured"}
    assert [e["mac"] for e in res.json["enis"]] == ["00:16:3e:00:01:01", "00:16:3e:00:02:01"]
    assert sorted_rules(owned_rules(t)) == sorted_rules(
        expected_rules(t.eni("eth1").ips, table_of(t, "eth1"))
        + expected_rules(t.eni("eth2").ips, table_of(t, "eth2")))
    assert_traffic(t, ["10.0.0.5", *eni_ips(t)])
    configured = dumps(guest_state(t))

    # the lower-case document sees nothing to do, and neither does upper-case again
    for doc in (lower, upper):
        agent.write(doc)
        assert agent.converge().states() == {"eth1": "in-sync", "eth2": "in-sync"}
        assert dumps(guest_state(t)) == configured
