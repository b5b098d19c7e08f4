"""A child link stacked on an ENI's NIC and sharing its MAC (a macvlan in
passthru mode) is no rival to it: the ENI is not `ambiguous`, and a new IP
still gets added and answers. Two real NICs with one MAC stay ambiguous."""

from __future__ import annotations

from tests.harness.agent import Agent
from tests.harness.commands import ip
from tests.harness.enis import make_eni
from tests.harness.kernel import address_ips
from tests.harness.prober import assert_traffic

NEW_IP = "10.0.1.12"


def test_a_macvlan_passthru_child_does_not_freeze_the_eni(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    mac = t.eni("eth1").mac
    ip(t.guest, "link", "add", "mv0", "link", "eth1", "address", mac, "type", "macvlan",
       "mode", "passthru")
    ip(t.guest, "link", "set", "mv0", "up")

    t.assign_private_ip("eth1", NEW_IP)
    agent.write()
    res = agent.sync("--json")

    assert res.code == 0, str(res)
    assert res.states() == {"eth1": "configured"}
    assert NEW_IP in address_ips(t, "eth1") and address_ips(t, "mv0") == []
    assert_traffic(t, t.eni("eth1").ips)
    status = agent.status()
    assert status.code == 0 and "eth1" in status.stdout and "ambiguous" not in status.stdout


def test_two_real_nics_with_one_mac_stay_ambiguous(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    agent = Agent(t, tmp_path)
    agent.write()
    ip(t.guest, "link", "add", "eth9", "address", t.eni("eth1").mac, "type", "veth",
       "peer", "name", "eth9p")

    res = agent.sync("--json")

    assert res.code == 3, str(res)
    (eni,) = res.json["enis"]
    assert eni["state"] == "ambiguous" and "eth9" in eni["reason"], str(res)
    assert address_ips(t, "eth1") == [] and address_ips(t, "eth9") == []
