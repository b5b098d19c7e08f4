"""Configuring an ENI in the guest by hand, as an administrator (or the naive
tool the product replaces) would: the baselines the agent is compared with."""

from __future__ import annotations

from .commands import ip
from .enis import Eni
from .topology import Topology


def configure_address_only(topo: Topology, eni: Eni | str) -> None:
    """The naive configuration the product replaces: bring the ENI up and add
    its addresses (with kernel prefix routes), WITHOUT policy routing."""
    eni = topo.lookup(eni)
    ip(topo.guest, "link", "set", eni.ifname, "up")
    for addr in eni.ips:
        ip(topo.guest, "addr", "add", f"{addr}/{eni.prefixlen}", "dev", eni.ifname)


def configure_policy_routing_by_hand(topo: Topology, eni: Eni | str, table: int, *,
                                     priority: int = 10000) -> None:
    """Configure source-based policy routing for ``eni`` by hand (what the
    agent is expected to do), to prove the harness::

        ip link set ethX up
        ip addr add IP/PLEN dev ethX noprefixroute          # every private IP
        ip route add CIDR dev ethX src PRIMARY_IP table T
        ip route add default via GW dev ethX onlink table T
        ip rule add from IP lookup T priority 10000          # every private IP
    """
    eni = topo.lookup(eni)
    g = topo.guest
    ip(g, "link", "set", eni.ifname, "up")
    for addr in eni.ips:
        ip(g, "addr", "add", f"{addr}/{eni.prefixlen}", "dev", eni.ifname, "noprefixroute")
    ip(g, "route", "add", eni.cidr, "dev", eni.ifname, "src", eni.primary_ip,
       "table", table)
    ip(g, "route", "add", "default", "via", eni.gateway, "dev", eni.ifname, "onlink",
       "table", table)
    for addr in eni.ips:
        ip(g, "rule", "add", "from", addr, "lookup", table, "priority", priority)
