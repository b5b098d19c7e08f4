"""Config `mtu` and `queues` (opt-in): a hot-plugged ENI gets the primary's
MTU (or a number) and every queue its NIC offers; off by default; never the
primary's; reconciled (only set when it differs), shown by `status`."""

from __future__ import annotations


from tests.harness.agent import Agent, write_config
from tests.harness.prober import assert_traffic, eni_ips
from tests.harness.commands import ip, run_in
from tests.harness.enis import make_eni
from tests.harness.kernel import ip_json
from tests.harness.namespaces import in_netns
from tests.harness.topology import Topology


def mtu(topo: Topology, ifname: str) -> int:
    return ip_json(topo.guest, "link", "show", "dev", ifname)[0]["mtu"]


def real_queues(topo: Topology, ifname: str) -> tuple[int, int]:
    """(rx, tx) queues in use, as sysfs lists them in the guest."""
    out = run_in(topo.guest, "ls", f"/sys/class/net/{ifname}/queues", check=True).stdout.split()
    return (sum(q.startswith("rx-") for q in out), sum(q.startswith("tx-") for q in out))


def lower_queues_to_one(topo: Topology, ifname: str) -> None:
    def lower() -> None:
        from pyroute2.ethtool.ioctl import IoctlEthtool

        ethtool = IoctlEthtool(ifname)
        try:
            channels = ethtool.get_channels()
            channels.rx_count = channels.tx_count = 1
            ethtool.set_channels(channels)
        finally:
            ethtool.close()
    in_netns(topo.guest, lower)


def agent_with(topo: Topology, tmp_path, settings: str) -> tuple[Agent, str]:
    agent = Agent(topo, tmp_path)
    agent.write()
    return agent, str(write_config(tmp_path / "config.toml", settings))


def test_mtu_primary_follows_the_primary_and_is_reconciled(topology_factory, tmp_path):
    topo = topology_factory([make_eni(1), make_eni(2)])
    ip(topo.guest, "link", "set", "eth0", "mtu", "8500")  # a jumbo-frame family's primary
    agent, config = agent_with(topo, tmp_path, 'mtu = "primary"\n')

    first = agent.converge("--config", config)
    assert "set mtu 8500 on eth1" in first.eni("eth1")["changes"]
    assert [mtu(topo, n) for n in ("eth0", "eth1", "eth2")] == [8500, 8500, 8500]
    assert first.eni("eth1")["mtu"] == 8500
    assert_traffic(topo, eni_ips(topo))

    again = agent.converge("--config", config)
    assert [e["changes"] for e in again.json["enis"]] == [[], []]

    ip(topo.guest, "link", "set", "eth2", "mtu", "1500")  # someone resets it
    status = agent.status("--config", config, "--json")
    assert status.code == 3 and status.eni("eth2")["state"] == "out-of-sync"
    assert status.eni("eth2")["changes"] == ["set mtu 8500 on eth2"]
    assert "link: mtu 1500" in agent.status("--config", config).stdout
    agent.converge("--config", config)
    assert mtu(topo, "eth2") == 8500 and mtu(topo, "eth0") == 8500


def test_mtu_number_never_touches_the_primary(topology_factory, tmp_path):
    topo = topology_factory([make_eni(1)])
    agent, config = agent_with(topo, tmp_path, "mtu = 9000\n")
    agent.converge("--config", config)
    assert mtu(topo, "eth1") == 9000 and mtu(topo, "eth0") == 1500


def test_off_by_default_the_platform_mtu_and_queues_stay(topology_factory, tmp_path):
    eni = make_eni(1)
    eni.queues = 4
    topo = topology_factory([eni])
    lower_queues_to_one(topo, "eth1")
    ip(topo.guest, "link", "set", "eth0", "mtu", "8500")
    agent = Agent(topo, tmp_path)
    agent.write()
    res = agent.converge()
    assert mtu(topo, "eth1") == 1500 and real_queues(topo, "eth1") == (1, 1)
    assert res.eni("eth1")["mtu"] is None and res.eni("eth1")["queues"] is None


def test_queues_max_raises_every_queue_the_nic_offers(topology_factory, tmp_path):
    eni = make_eni(1)
    eni.queues = 4
    topo = topology_factory([eni])
    lower_queues_to_one(topo, "eth1")
    assert real_queues(topo, "eth1") == (1, 1)
    agent, config = agent_with(topo, tmp_path, 'queues = "max"\n')

    status = agent.status("--config", config, "--json")
    assert status.code == 3
    agent.converge("--config", config)  # addresses, routes, rules first
    lower_queues_to_one(topo, "eth1")
    status = agent.status("--config", config, "--json")
    assert status.eni("eth1")["state"] == "out-of-sync"
    assert status.eni("eth1")["queues"] == "rx 1 of 4, tx 1 of 4"

    res = agent.converge("--config", config)
    assert res.eni("eth1")["changes"] == ["set queues of eth1 to rx 4 of 4, tx 4 of 4"]
    assert real_queues(topo, "eth1") == (4, 4)
    again = agent.converge("--config", config)
    assert again.eni("eth1")["changes"] == [] and again.eni("eth1")["queues"] == "rx 4 of 4, tx 4 of 4"
    assert_traffic(topo, eni_ips(topo))
