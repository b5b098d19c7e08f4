"""`main_table_first` split the nm-cloud-setup way (issue 16 §5): each ENI
source looks its own table up first with the default route refused (its
vswitch), then `main` with the default route refused (docker0, a VPN), then
its table. A Docker-style published port (a bridge, nft DNAT) is answered on
an ENI address, for an ENI in another vswitch (eth1) and one in the
primary's (eth2), and eth2 still answers a peer in its (the primary's)
vswitch, which `main`'s connected route for eth0 would send astray."""

from __future__ import annotations


from tests.harness.agent import Agent, write_config
from tests.harness.kernel import owned_rules
from tests.harness.containers import container, fetch, publish, serving
from tests.harness.commands import ip
from tests.harness.enis import Eni, make_eni
from tests.harness.prober import outbound_handshake, tcp_handshake


PORT = 8080
IN_PRIMARY_VSWITCH = Eni("00:16:3e:00:02:01", "eth2", "10.0.0.0/24", "10.0.0.253",
                         ("10.0.0.20",), "eni-third", "vsw-a")
ENI_IPS = ["10.0.1.10", "10.0.0.20"]


def peer_in_primary_vswitch_reaches_eth2(t) -> bool:
    return tcp_handshake(t.guest, "10.0.0.20", t.router, client_source="10.0.0.253",
                         timeout=1.5)


def test_published_port_on_eni_addresses_and_the_enis_own_vswitch(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), IN_PRIMARY_VSWITCH])
    agent = Agent(t, tmp_path)
    agent.write()
    on = write_config(tmp_path / "on.toml", "main_table_first = true\n")
    with container(t) as ctr, serving(ctr, PORT):
        publish(t, ENI_IPS, PORT)
        agent.converge()  # off: the DNATed connection follows the ENI rule out of the ENI
        assert [fetch(t.guest, a, PORT) for a in ENI_IPS] == [None, None]

        res = agent.converge("--config", on)
        assert sorted(r["priority"] for r in owned_rules(t)) == [9998] * 3 + [9999] + [10000] * 3
        assert "add rule 9998: from 10.0.0.20 lookup" in " ".join(res.eni("eth2")["changes"])
        assert [fetch(t.guest, a, PORT) for a in ENI_IPS] == [b"container", b"container"]
        assert peer_in_primary_vswitch_reaches_eth2(t)
        assert all(outbound_handshake(t, a) for a in ENI_IPS)
        assert agent.status("--config", on).code == 0

        # control: without eth2's subnet-first rule (main_table_first before
        # the split), main's route for eth0's subnet takes eth2's replies
        ip(t.guest, "rule", "del", "priority", "9998", "from", "10.0.0.20")
        assert not peer_in_primary_vswitch_reaches_eth2(t)
        agent.converge("--config", on)
        assert peer_in_primary_vswitch_reaches_eth2(t)

        agent.converge()  # off again: the rules go
        assert sorted(r["priority"] for r in owned_rules(t)) == [10000] * 3
