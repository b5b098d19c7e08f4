"""NICs as the cloud sees them (:class:`Eni`), the conventional ones
(:func:`make_eni`, :func:`primary_eni`) and the fixed addresses of the test
topology's host and router."""

from __future__ import annotations

import dataclasses
import ipaddress

PRIMARY_MAC = "00:16:3e:00:00:01"
HOST_IP = "192.168.100.2"
HOST_IPV6 = "2001:db8:ff::2"
ROUTER_HOST_SIDE_IPV6 = "2001:db8:ff::1"
#: Priorities of the router's IPv6 strict reverse-path rules (ipv6_rpf).
RPF6_ACCEPT_PRIORITY, RPF6_DROP_PRIORITY = 100, 101
ROUTER_HOST_SIDE_IP = "192.168.100.1"
HOST_CIDR = "192.168.100.0/24"
DEFAULT_VPC_CIDR = "10.0.0.0/16"
DEFAULT_VPC_ID = "vpc-a"


@dataclasses.dataclass
class Eni:
    """One NIC as the cloud sees it.

    ``ips`` are the private IPv4s assigned to the ENI, primary first; the
    router routes exactly those to this ENI. ``eni_id``/``vswitch_id`` only
    feed the metadata document. ``router_ifname`` is filled in by the
    topology (the router end of the veth).

    IPv6 (optional): ``ipv6s`` assigned to the ENI in the vswitch's
    ``ipv6_cidr``, whose gateway is ``ipv6_gateway`` (in the CIDR, or
    link-local); used only by topologies with ``ipv6=True`` (and written to
    the metadata document when set).
    """
    mac: str
    ifname: str
    cidr: str
    gateway: str
    ips: tuple[str, ...] = ()
    eni_id: str | None = None
    vswitch_id: str | None = None
    router_ifname: str | None = None
    ipv6s: tuple[str, ...] = ()
    ipv6_cidr: str | None = None
    ipv6_gateway: str | None = None
    queues: int = 1  # the veth's rx and tx queues (a multi-queue NIC: config `queues`)

    def __post_init__(self) -> None:
        self.mac = self.mac.lower()
        self.ips = tuple(self.ips)
        net = self.network
        for addr in (self.gateway, *self.ips):
            if ipaddress.ip_address(addr) not in net:
                raise ValueError(f"{addr} is not in {self.cidr}")
        self.ipv6s = tuple(self.ipv6s)
        if self.ipv6s or self.ipv6_cidr or self.ipv6_gateway:
            if not (self.ipv6_cidr and self.ipv6_gateway):
                raise ValueError("IPv6 needs ipv6_cidr and ipv6_gateway")
            net6 = self.ipv6_network
            for addr in (self.ipv6_gateway, *self.ipv6s):
                if ipaddress.ip_address(addr) not in net6 and not (
                        addr == self.ipv6_gateway and ipaddress.ip_address(addr).is_link_local):
                    raise ValueError(f"{addr} is not in {self.ipv6_cidr}")

    @property
    def ipv6_network(self) -> ipaddress.IPv6Network | None:
        return ipaddress.IPv6Network(self.ipv6_cidr) if self.ipv6_cidr else None

    @property
    def ipv6_prefixlen(self) -> int | None:
        return self.ipv6_network.prefixlen if self.ipv6_cidr else None

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.ip_network(self.cidr)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    @property
    def netmask(self) -> str:
        return str(self.network.netmask)

    @property
    def primary_ip(self) -> str:
        return self.ips[0]


_ORDINALS = ["primary", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]


def make_eni(index: int, *, n_ips: int = 2, ifname: str | None = None,
             n_ipv6: int = 0) -> Eni:
    """A conventional ENI number ``index`` (>= 1)::

        make_eni(1) == Eni("00:16:3e:00:01:01", "eth1", "10.0.1.0/24", "10.0.1.253",
                           ("10.0.1.10", "10.0.1.11"), "eni-second", "vsw-b")

    ``n_ips`` private IPs starting at .10; ENI ids / vswitch ids match the
    example metadata document (eni-second, vsw-b, ...). ``n_ipv6`` IPv6
    addresses ``2001:db8:<index>::10``, ``::11``... in ``2001:db8:<index>::/64``,
    gateway ``2001:db8:<index>::fffd`` (none by default).
    """
    if not 1 <= index <= 200:
        raise ValueError("index must be in 1..200")
    ipv6 = {}
    if n_ipv6:
        ipv6 = {"ipv6s": tuple(f"2001:db8:{index:x}::{10 + i}" for i in range(n_ipv6)),
                "ipv6_cidr": f"2001:db8:{index:x}::/64",
                "ipv6_gateway": f"2001:db8:{index:x}::fffd"}
    return Eni(
        mac=f"00:16:3e:00:{index:02x}:01",
        ifname=ifname or f"eth{index}",
        cidr=f"10.0.{index}.0/24",
        gateway=f"10.0.{index}.253",
        ips=tuple(f"10.0.{index}.{10 + i}" for i in range(n_ips)),
        eni_id=f"eni-{_ORDINALS[index]}" if index < len(_ORDINALS) else f"eni-{index}",
        vswitch_id=f"vsw-{chr(ord('a') + index)}" if index < 26 else f"vsw-{index}",
        **ipv6,
    )


def primary_eni(*, ipv6: bool = False) -> Eni:
    """The primary NIC: eth0, 00:16:3e:00:00:01, 10.0.0.5 in 10.0.0.0/24, gw .253.
    With ``ipv6``, also 2001:db8::5 in 2001:db8::/64, gateway 2001:db8::fffd."""
    extra = {}
    if ipv6:
        extra = {"ipv6s": ("2001:db8::5",), "ipv6_cidr": "2001:db8::/64",
                 "ipv6_gateway": "2001:db8::fffd"}
    return Eni(PRIMARY_MAC, "eth0", "10.0.0.0/24", "10.0.0.253", ("10.0.0.5",),
               eni_id="eni-primary", vswitch_id="vsw-a", **extra)
