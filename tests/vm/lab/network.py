"""The host side of a guest's network: a router namespace (ip_forward, strict
rp_filter) holding a tap per guest NIC, and a client namespace behind it.

    client ns                 router ns (ip_forward, strict rp_filter)         the VM (qemu, TCG)
    eth0 192.168.100.2 ------ rc 192.168.100.1
                              tapN  <gateway>.253 noprefixroute  ==========  virtio-net, MAC of ENI N
                              <each private IP>/32 dev tapN

Like a VPC, the router routes each private IP of an ENI to that ENI's tap only,
so a reply leaving the guest through another NIC is dropped by rp_filter.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from pathlib import Path

from tests.harness.commands import ip, netstat_counter, run, set_sysctls

# The guest half every image gets (build-image.sh): its metadata document and plan.
GUEST = Path(__file__).resolve().parents[1] / "guest"
CLIENT_IP, ROUTER_CLIENT_IP = "192.168.100.2", "192.168.100.1"


@dataclasses.dataclass
class Nic:
    mac: str
    eni_id: str
    ips: list[str]
    gateway: str
    prefixlen: int
    tap: str
    hot: bool
    primary: bool

    @property
    def netdev(self) -> str:
        return "net" + self.mac.replace(":", "")[-4:]


def load_nics(tag: str) -> tuple[list[Nic], dict]:
    metadata = json.loads((GUEST / "metadata.json").read_text())
    plan = json.loads((GUEST / "plan.json").read_text())
    macs = metadata["network"]["interfaces"]["macs"]
    order = [metadata["mac"]] + sorted(m for m in macs if m != metadata["mac"])
    nics = []
    for i, mac in enumerate(order):
        m = macs[mac]
        nics.append(Nic(mac=mac, eni_id=m["network-interface-id"], ips=list(m["private-ipv4s"]),
                        gateway=m["gateway"],
                        prefixlen=ipaddress.ip_network(m["vswitch-cidr-block"]).prefixlen,
                        tap=f"evm{tag}t{i}", hot=mac in plan["hotplug_macs"],
                        primary=mac == plan["primary_mac"]))
    return nics, plan


class Network:
    """The router and client namespaces, and a tap per guest NIC in the router."""

    def __init__(self, tag: str, nics: list[Nic]):
        self.router, self.client = f"eni-vm-{tag}-router", f"eni-vm-{tag}-client"
        self.nics = nics

    def create(self) -> None:
        for ns in (self.router, self.client):
            run(["ip", "netns", "add", ns])
            ip(ns, "link", "set", "lo", "up")
        set_sysctls(self.router, {"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.rp_filter": 1,
                                  "net.ipv4.conf.default.rp_filter": 1})
        ip(self.router, "link", "add", "rc", "type", "veth", "peer", "name", "eth0",
           "netns", self.client)
        ip(self.router, "addr", "add", f"{ROUTER_CLIENT_IP}/24", "dev", "rc")
        ip(self.router, "link", "set", "rc", "up")
        ip(self.client, "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        ip(self.client, "link", "set", "eth0", "up")
        ip(self.client, "route", "add", "default", "via", ROUTER_CLIENT_IP)
        # Every tap exists from the start (the ENI exists in the VPC before it is
        # attached); the guest sees a NIC only once qemu has a device on it.
        for nic in self.nics:
            ip(self.router, "tuntap", "add", "dev", nic.tap, "mode", "tap")
            set_sysctls(self.router, {f"net.ipv4.conf.{nic.tap}.rp_filter": 1})
            ip(self.router, "addr", "add", f"{nic.gateway}/{nic.prefixlen}", "dev", nic.tap,
               "noprefixroute")
            ip(self.router, "link", "set", nic.tap, "up")
            for addr in nic.ips:
                ip(self.router, "route", "add", f"{addr}/32", "dev", nic.tap, "src", nic.gateway)

    def rp_filter_drops(self) -> int:
        return netstat_counter(self.router, "IPReversePathFilter")

    def destroy(self) -> None:
        for ns in (self.client, self.router):
            run(["ip", "netns", "delete", ns], check=False)

