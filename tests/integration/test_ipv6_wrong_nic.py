"""A reply from an ENI's IPv6 address must leave through that ENI, and only
the agent's policy routing makes it so. The kernel has no IPv6 rp_filter, so
the wrong-NIC reply is shown three ways, each before and after `sync`:

* rules: the harness's emulation of strict reverse-path filtering in the
  router (ipv6_rpf=True, used by every other IPv6 test): the handshake fails
  before and works after;
* nft: the router runs nftables' reverse-path filter
  (`fib saddr . iif oif missing drop`) instead, with a counter of the drops
  (skipped where nft is not installed);
* counters: no filter at all: the handshake works both times (asymmetric
  routing), but the router's per-interface packet counters show the guest's
  packets arriving on the primary link before, and on the ENI's link after.

Before `sync`, the ENI is configured the naive way: link up and its IPv6
address added (with the kernel's prefix route), no policy routing.
"""

from __future__ import annotations

import re
import shutil

import pytest

from tests.harness.agent import Agent
from tests.harness.commands import ip, run_in
from tests.harness.enis import make_eni, primary_eni
from tests.harness.kernel import ip_json
from tests.harness.prober import inbound_handshake, outbound_handshake

ENI_IP6 = "2001:db8:1::10"
PROBES = 5
NFT_RULES = """
table ip6 eni_t_rpf {
    chain pre {
        type filter hook prerouting priority raw; policy accept;
        ip6 saddr != :: fib saddr . iif oif missing counter drop
    }
}
"""


def rx_packets(ns: str, ifname: str) -> int:
    return ip_json(ns, "-s", "link", "show", "dev", ifname)[0]["stats64"]["rx"]["packets"]


def nft_drops(t) -> int:
    out = run_in(t.router, "nft", "list", "chain", "ip6", "eni_t_rpf", "pre", check=True).stdout
    return int(re.search(r"counter packets (\d+)", out).group(1))


def probe(t) -> tuple[int, int, int, int]:
    """PROBES handshakes each way through ENI_IP6: (inbound ok, outbound ok,
    packets the router received on the primary link, on the ENI's link)."""
    primary, eni = t.primary.router_ifname, t.eni("eth1").router_ifname
    rx0, rx1 = rx_packets(t.router, primary), rx_packets(t.router, eni)
    inbound = sum(inbound_handshake(t, ENI_IP6, timeout=1.0) for _ in range(PROBES))
    outbound = sum(outbound_handshake(t, ENI_IP6, timeout=1.0) for _ in range(PROBES))
    return (inbound, outbound, rx_packets(t.router, primary) - rx0,
            rx_packets(t.router, eni) - rx1)


@pytest.mark.parametrize("check", ["rules", "nft", "counters"])
def test_a_reply_from_an_eni_ipv6_address_leaves_through_the_eni_only_after_sync(
        topology_factory, tmp_path, check):
    if check == "nft" and not shutil.which("nft"):
        pytest.skip("nft is not installed (apt-get install nftables)")
    t = topology_factory([make_eni(1, n_ipv6=1)], ipv6=True, primary=primary_eni(ipv6=True),
                         ipv6_rpf=check == "rules")
    if check == "nft":
        run_in(t.router, "nft", "-f", "-", input=NFT_RULES, check=True)

    # The naive configuration: the address only, replies follow the main table.
    ip(t.guest, "link", "set", "eth1", "up")
    ip(t.guest, "-6", "addr", "add", f"{ENI_IP6}/64", "dev", "eth1", "nodad")
    drops = nft_drops(t) if check == "nft" else 0
    inbound, outbound, on_primary, on_eni = probe(t)
    print(f"{check}, before sync: inbound {inbound}/{PROBES}, outbound {outbound}/{PROBES}, "
          f"router rx: primary link +{on_primary}, ENI link +{on_eni}")
    if check == "counters":
        assert (inbound, outbound) == (PROBES, PROBES)  # nothing filters: asymmetric, works
    else:
        assert (inbound, outbound) == (0, 0)
    if check == "nft":
        assert nft_drops(t) - drops >= 2 * PROBES
    assert on_primary >= 2 * PROBES, (on_primary, on_eni)
    if check == "counters":  # (the ENI's link also carries the guest's RS/MLD/NDP)
        assert on_eni < on_primary / 4, (on_primary, on_eni)

    ip(t.guest, "-6", "addr", "del", f"{ENI_IP6}/64", "dev", "eth1")
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()

    drops = nft_drops(t) if check == "nft" else 0
    inbound, outbound, on_primary, on_eni = probe(t)
    print(f"{check}, after sync: inbound {inbound}/{PROBES}, outbound {outbound}/{PROBES}, "
          f"router rx: primary link +{on_primary}, ENI link +{on_eni}")
    assert (inbound, outbound) == (PROBES, PROBES)
    if check == "nft":
        assert nft_drops(t) == drops
    assert on_eni >= 4 * PROBES and on_primary < on_eni / 4, (on_primary, on_eni)
