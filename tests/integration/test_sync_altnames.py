"""Each configured ENI's NIC gets its ENI id as an altname, so people can type
`ip addr show eni-...`; cleanup and ignoring the ENI take it away again; an
altname someone else gave the NIC stays."""

from __future__ import annotations


from tests.harness.agent import Agent
from tests.harness.kernel import link
from tests.harness.commands import ip
from tests.harness.enis import make_eni


def altnames(topo, ifname: str) -> list[str]:
    return link(topo, ifname).get("altnames", [])


def test_the_eni_id_names_the_nic_until_cleanup(topology_factory, tmp_path):
    eni = make_eni(1)
    t = topology_factory([eni])
    eni_id = eni.eni_id or f"eni-{eni.mac.replace(':', '')}"  # as eni_metadata writes it
    ip(t.guest, "link", "property", "add", "dev", eni.ifname, "altname", "uplink-theirs")
    agent = Agent(t, tmp_path)
    agent.write()

    res = agent.sync("--json")
    assert res.code == 0, str(res)
    assert f"add altname {eni_id} dev {eni.ifname}" in res.eni(eni.mac)["changes"]
    assert sorted(altnames(t, eni.ifname)) == sorted([eni_id, "uplink-theirs"])
    # the name people type reaches the ENI's NIC and its addresses
    shown = ip(t.guest, "-j", "addr", "show", "dev", eni_id).stdout
    assert eni.ips[0] in shown and eni.mac in shown
    again = agent.sync("--json")
    assert again.code == 0 and again.eni(eni.mac)["changes"] == [], str(again)

    res = agent.cleanup("--json")
    assert res.code == 0, str(res)
    assert f"remove altname {eni_id} dev {eni.ifname}" in res.json["other_changes"]
    assert altnames(t, eni.ifname) == ["uplink-theirs"]


def test_an_ignored_eni_loses_its_altname(topology_factory, tmp_path):
    eni = make_eni(1)
    t = topology_factory([eni])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    assert len(altnames(t, eni.ifname)) == 1

    res = agent.sync("--json", "--ignore-mac", eni.mac)
    assert res.code == 0, str(res)
    assert altnames(t, eni.ifname) == []


def test_a_kernel_without_altnames_converges_without_them(topology_factory, tmp_path):
    """Before Linux 5.5 (ENI_AGENT_ALTNAMES=0 stands in for one) no altname is asked for."""
    eni = make_eni(1)
    t = topology_factory([eni])
    agent = Agent(t, tmp_path)
    agent.env["ENI_AGENT_ALTNAMES"] = "0"
    agent.write()
    res = agent.sync("--json")
    assert res.code == 0 and res.json["result"] == "converged", str(res)
    assert not [c for c in res.eni(eni.mac)["changes"] if "altname" in c]
    assert altnames(t, eni.ifname) == []
