"""Prefixes delegated to an ENI (`ipv4-prefixes`): `eni-agent sync` adds one
`from <prefix> lookup <ENI table>` rule per prefix, so a reply from any address
of the prefix (a container's, a NAT's) leaves through its ENI (issue 12 §6).

The router forwards a packet from an ENI's address or prefix only if it
arrived on that ENI's link (strict rp_filter), so a handshake from an address
of the prefix completes only if the agent's rule sends it out through the ENI.
The address itself is the user's (here: on `lo`); the agent only routes it.
"""

from __future__ import annotations

import json

from tests.harness.agent import Agent
from tests.harness.enis import make_eni
from tests.harness.kernel import owned_rules, table_of
from tests.harness.metadata import build_metadata
from tests.harness.prefixes import PREFIX, PREFIX_IP, prefix_rules, prefix_topology, with_prefixes
from tests.harness.prober import outbound_handshake


def test_a_delegated_prefix_is_routed_through_its_eni_and_kept_in_sync(topology_factory,
                                                                         tmp_path):
    t = prefix_topology(topology_factory)
    agent = Agent(t, tmp_path)
    agent.write(with_prefixes(t, []))
    agent.converge()
    assert not outbound_handshake(t, PREFIX_IP)  # leaves by eth0: the router drops it

    agent.write(with_prefixes(t, f"[{PREFIX}]"))  # as `meta-data/all` writes it
    agent.converge()

    table = table_of(t, "eth1")
    assert prefix_rules(t) == [{"priority": 10000, "src": "10.0.1.32", "srclen": 28,
                                "table": str(table), "protocol": "234"}]
    assert outbound_handshake(t, PREFIX_IP)
    status = agent.status("--json")  # the prefix rule is observed as the agent's own
    assert status.code == 0 and status.json["result"] == "converged", str(status)
    assert [e["changes"] for e in status.json["enis"]] == [[]] and not status.json["other_changes"]

    agent.write(with_prefixes(t, []))  # the prefix is taken back
    agent.converge()
    assert prefix_rules(t) == []
    assert len(owned_rules(t)) == 2  # the ENI's own two addresses keep theirs
    assert not outbound_handshake(t, PREFIX_IP)


def test_a_saved_meta_data_all_file_configures_its_enis(topology_factory, tmp_path):
    """Thin primary entry, lists as text: the file works as it is."""
    t = topology_factory([make_eni(1)])
    doc = build_metadata(t)
    macs = doc["network"]["interfaces"]["macs"]
    macs[t.primary.mac] = {"gateway": t.primary.gateway, "netmask": t.primary.netmask,
                           "network-interface-id": "eni-primary"}
    entry = macs[t.eni("eth1").mac]
    entry["private-ipv4s"] = json.dumps(entry["private-ipv4s"])
    del entry["vswitch-cidr-block"]  # netmask stands in for it
    agent = Agent(t, tmp_path)
    agent.write(doc)

    res = agent.converge()

    assert res.states() == {"eth1": "configured"}
    assert outbound_handshake(t, t.eni("eth1").ips[1])
