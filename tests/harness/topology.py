"""The test topology: a VM in a VPC as three network namespaces and veths.

A :class:`Topology` models a VM in an Alibaba Cloud VPC using three fresh
network namespaces joined by veth pairs::

    guest                        router                         host
    eth0 10.0.0.5/24  ---------  rv0 10.0.0.253  (gw)
    eth1 (ENI, DOWN)  ---------  rv1 10.0.1.253  (gw)
    ...                          rh  192.168.100.1  ----------  eth0 192.168.100.2/24
                                                                default via .1

* ``guest``: ``lo`` up; ``eth0`` configured as an image's DHCP client would
  (``10.0.0.5/24`` + kernel prefix route + ``default via 10.0.0.253 proto dhcp``).
  ENI NICs appear with the chosen MAC and name, DOWN and unconfigured: the
  agent under test configures them.
* ``router``: forwards (``ip_forward=1``) with STRICT reverse-path filtering
  (``rp_filter=1`` on all/default/every interface), so a reply that leaves the
  guest through the wrong NIC is dropped (counted as ``TcpExt
  IPReversePathFilter``, see :func:`netstat_counter`). Like a VPC, it routes
  each private IP (``/32``) to the ENI it is assigned to; the vswitch gateway
  address sits on the router end of each ENI with ``noprefixroute``, so
  several ENIs may share one vswitch.
* ``host``: a host beyond the router, ``192.168.100.2``.

IPv6 (only with ``Topology(ipv6=True)``; otherwise IPv6 is disabled
everywhere): NICs created with IPv6 fields (``make_eni(i, n_ipv6=N)``,
``primary_eni(ipv6=True)``) get it like IPv4: the router holds each vswitch's
IPv6 gateway (``2001:db8:<i>::fffd/64``, nodad, noprefixroute) on the ENI's
link and routes each ENI IPv6 ``/128`` to it; it forwards IPv6; the host has
``2001:db8:ff::2/64`` with a default via the router (``2001:db8:ff::1``); the
guest's primary NIC gets its IPv6 address and a default route (``proto ra``) as
SLAAC would. The kernel has no IPv6 rp_filter, so the router emulates the
strict check with rules (``ipv6_rpf=True``, the default): a packet from an ENI
IPv6 address is forwarded only if it arrived on that ENI's link
(``from ADDR iif LINK lookup main`` at 100, ``from ADDR blackhole`` at 101).

Namespace names are ``eni-t-<random>-<pid>-<role>`` (namespaces.py).
Topologies are always torn down (context manager / fixture finaliser /
atexit). The router's part is router.py; the ENIs, enis.py.

Everything here needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN).
"""

from __future__ import annotations

import copy
import ipaddress
import os
import secrets
from typing import Any, Callable, Iterable

from . import router
from .commands import ip, set_sysctls
from .enis import DEFAULT_VPC_CIDR, DEFAULT_VPC_ID, HOST_IP, HOST_IPV6, Eni, primary_eni
from .namespaces import PREFIX, create_namespace, delete_namespace


class Topology:
    """guest / router / host namespaces; see the module docstring.

    Create with ``Topology.create(enis)`` (or via the ``topology_factory``
    fixture) and use as a context manager to guarantee teardown::

        with Topology.create([make_eni(1)]) as topo:
            topo.guest, topo.router, topo.host   # namespace names
            topo.eni("eth1")                     # the topology's Eni object
    """

    def __init__(self, *, primary: Eni | None = None, guest_rp_filter: int = 0,
                 ipv6: bool = False, guest_sysctls: dict[str, Any] | None = None,
                 vpc_cidr: str = DEFAULT_VPC_CIDR, vpc_id: str = DEFAULT_VPC_ID,
                 ipv6_rpf: bool = True) -> None:
        self.tag = secrets.token_hex(3)
        self.guest = f"{PREFIX}{self.tag}-{os.getpid()}-guest"
        self.router = f"{PREFIX}{self.tag}-{os.getpid()}-router"
        self.host = f"{PREFIX}{self.tag}-{os.getpid()}-host"
        self.primary = copy.deepcopy(primary or primary_eni())
        self.enis: dict[str, Eni] = {}  # attached secondary ENIs by guest ifname
        self.guest_rp_filter = guest_rp_filter
        self.ipv6 = ipv6
        self.ipv6_rpf = ipv6_rpf
        self.host_ipv6 = HOST_IPV6 if ipv6 else None
        self.guest_sysctls = dict(guest_sysctls or {})
        self.vpc_cidr = vpc_cidr
        self.vpc_id = vpc_id
        self.host_ip = HOST_IP
        self._created: list[str] = []
        self._next_router_if = 0

    # -- lifecycle ---------------------------------------------------------

    @classmethod
    def create(cls, enis: Iterable[Eni] = (), **kwargs: Any) -> "Topology":
        """Build a fresh topology with the primary NIC plus ``enis`` attached
        (guest ends DOWN and unconfigured). Keyword args go to ``__init__``:
        ``primary``, ``guest_rp_filter`` (0/1/2, default 0), ``ipv6`` (default
        False: IPv6 disabled everywhere for deterministic state),
        ``guest_sysctls``, ``vpc_cidr``, ``vpc_id``, ``ipv6_rpf`` (with
        ``ipv6``: the router's strict IPv6 reverse-path rules, default True; see
        the module docstring). Partially built
        topologies are destroyed if building fails."""
        topo = cls(**kwargs)
        try:
            topo._build(list(enis))
        except BaseException:
            topo.destroy()
            raise
        return topo

    def __enter__(self) -> "Topology":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.destroy()

    @property
    def namespaces(self) -> list[str]:
        """Names of this topology's namespaces."""
        return [self.guest, self.router, self.host]

    def destroy(self) -> None:
        """Delete all namespaces of this topology (idempotent)."""
        errors = []
        for name in reversed(self._created):
            try:
                delete_namespace(name)
            except Exception as exc:  # keep deleting the others
                errors.append(exc)
        self._created.clear()
        if errors:
            raise errors[0]

    def _base_sysctls(self) -> dict[str, Any]:
        if self.ipv6:  # no DAD: link-local addresses are final at once
            return {"net.ipv6.conf.all.disable_ipv6": 0, "net.ipv6.conf.default.disable_ipv6": 0,
                    "net.ipv6.conf.all.accept_dad": 0, "net.ipv6.conf.default.accept_dad": 0}
        return {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1}

    def _build(self, enis: list[Eni]) -> None:
        for role in ("guest", "router", "host"):
            name = create_namespace(role, self.tag)
            self._created.append(name)
        # New namespaces inherit IPv4 conf from the init namespace: set
        # everything that matters explicitly so results don't depend on the CI host.
        set_sysctls(self.guest, {
            **self._base_sysctls(),
            "net.ipv4.ip_forward": 0,
            "net.ipv4.conf.all.rp_filter": self.guest_rp_filter,
            "net.ipv4.conf.default.rp_filter": self.guest_rp_filter,
            "net.ipv4.conf.all.arp_ignore": 0,
            "net.ipv4.conf.default.arp_ignore": 0,
            "net.ipv4.conf.all.arp_announce": 0,
            "net.ipv4.conf.default.arp_announce": 0,
            **self.guest_sysctls,
        })
        router.configure_forwarding(self.router, self._base_sysctls(), ipv6=self.ipv6)
        set_sysctls(self.host, {
            **self._base_sysctls(),
            "net.ipv4.ip_forward": 0,
            "net.ipv4.conf.all.rp_filter": 0,
            "net.ipv4.conf.default.rp_filter": 0,
        })

        router.connect_host(self.router, self.host, ipv6=self.ipv6)

        # primary NIC, configured the way the image's DHCP client would
        self._attach(self.primary)
        p = self.primary
        ip(self.guest, "link", "set", p.ifname, "up")
        ip(self.guest, "addr", "add", f"{p.primary_ip}/{p.prefixlen}", "brd", "+",
           "dev", p.ifname)
        ip(self.guest, "route", "add", "default", "via", p.gateway, "dev", p.ifname,
           "proto", "dhcp")
        if self.ipv6 and p.ipv6s:  # as SLAAC / DHCPv6 would
            for addr in p.ipv6s:
                ip(self.guest, "-6", "addr", "add", f"{addr}/{p.ipv6_prefixlen}", "dev",
                   p.ifname, "nodad")
            ip(self.guest, "-6", "route", "add", "default", "via", p.ipv6_gateway, "dev",
               p.ifname, "proto", "ra")

        for eni in enis:
            self.add_eni(eni)

    # -- ENIs --------------------------------------------------------------

    def eni(self, ifname: str) -> Eni:
        """The attached secondary ENI whose guest interface is ``ifname``."""
        return self.enis[ifname]

    def all_enis(self) -> list[Eni]:
        """Primary NIC first, then the attached secondary ENIs."""
        return [self.primary, *self.enis.values()]

    def _attach(self, eni: Eni) -> None:
        rif = f"rv{self._next_router_if}"
        self._next_router_if += 1
        router.connect_eni(self.router, self.guest, eni, rif, ipv6=self.ipv6,
                           ipv6_rpf=self.ipv6_rpf)

    def add_eni(self, eni: Eni) -> Eni:
        """Hotplug: attach ``eni``; its guest end appears in the guest DOWN and
        unconfigured. Returns the topology's own copy of the Eni."""
        if eni.ifname in self.enis or eni.ifname == self.primary.ifname:
            raise ValueError(f"{eni.ifname} already attached")
        eni = copy.deepcopy(eni)
        self._attach(eni)
        self.enis[eni.ifname] = eni
        return eni

    def remove_eni(self, eni: Eni | str) -> Eni:
        """Detach: delete the veth (via its router end, so this works even if
        the guest renamed its interface). Returns the removed Eni."""
        eni = self.enis.pop(eni if isinstance(eni, str) else eni.ifname)
        router.disconnect_eni(self.router, eni, ipv6=self.ipv6, ipv6_rpf=self.ipv6_rpf)
        return eni

    def assign_private_ip(self, eni: Eni | str, addr: str) -> Eni:
        """Cloud-side AssignPrivateIpAddresses: the router starts routing
        ``addr`` to the ENI (the guest is not touched). An IPv6 ``addr``
        (AssignIpv6Addresses) needs ``ipv6=True`` and an ENI with IPv6."""
        eni = self.lookup(eni)
        if ipaddress.ip_address(addr).version == 6:  # AssignIpv6Addresses
            if not (self.ipv6 and eni.ipv6_cidr) or ipaddress.ip_address(addr) not in \
                    eni.ipv6_network:
                raise ValueError(f"{addr} is not in {eni.ipv6_cidr}")
            router.route_ipv6(self.router, eni, addr, rpf=self.ipv6_rpf)
            eni.ipv6s = (*eni.ipv6s, addr)
            return eni
        if ipaddress.ip_address(addr) not in eni.network:
            raise ValueError(f"{addr} is not in {eni.cidr}")
        router.route_ipv4(self.router, eni, addr)
        eni.ips = (*eni.ips, addr)
        return eni

    def route_havip(self, eni: Eni | str, addr: str) -> None:
        """The VPC routes a HaVip (a floating IP of the vswitch, never in the
        metadata's private IPs) to the ENI of the VRRP master: the router
        routes ``addr``/32 to ``eni``'s link, replacing where it went before."""
        eni = self.lookup(eni)
        if ipaddress.ip_address(addr).version == 6:
            ip(self.router, "-6", "route", "del", f"{addr}/128", check=False)
            router.route_ipv6(self.router, eni, addr, rpf=self.ipv6_rpf)
            return
        ip(self.router, "route", "replace", f"{addr}/32", "dev", eni.router_ifname,
           "src", eni.gateway)

    def unassign_private_ip(self, eni: Eni | str, addr: str) -> Eni:
        """Cloud-side UnassignPrivateIpAddresses: the router stops routing ``addr``."""
        eni = self.lookup(eni)
        if ipaddress.ip_address(addr).version == 6:  # UnassignIpv6Addresses
            router.unroute_ipv6(self.router, eni, addr, rpf=self.ipv6_rpf)
            eni.ipv6s = tuple(a for a in eni.ipv6s if a != addr)
            return eni
        router.unroute_ipv4(self.router, eni, addr)
        eni.ips = tuple(a for a in eni.ips if a != addr)
        return eni

    def lookup(self, eni: Eni | str) -> Eni:
        """The primary NIC or the attached ENI named ``eni`` (or the topology's copy of it)."""
        name = eni if isinstance(eni, str) else eni.ifname
        return self.primary if name == self.primary.ifname else self.enis[name]

    def set_router_rp_filter(self, value: int) -> None:
        """Change rp_filter on all router interfaces (for control experiments)."""
        ifs = ["all", "default", "lo", "rh", *(e.router_ifname for e in self.all_enis())]
        router.set_rp_filter(self.router, ifs, value)

    def __repr__(self) -> str:
        return f"<Topology {self.tag} enis={list(self.enis)}>"


DAD_ON = {"net.ipv6.conf.all.accept_dad": 1, "net.ipv6.conf.default.accept_dad": 1}


def ipv6_topology(factory: Callable[..., Topology], enis: Iterable[Eni],
                  **kwargs: Any) -> Topology:
    """A topology with IPv6 on, the primary NIC with IPv6, DAD on in the guest."""
    return factory(enis, ipv6=True, primary=primary_eni(ipv6=True),
                   guest_sysctls={**DAD_ON, **kwargs.pop("guest_sysctls", {})}, **kwargs)
