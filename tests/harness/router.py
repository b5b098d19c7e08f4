"""The router namespace: a VPC's forwarding, with strict reverse-path checks.

It forwards with ``rp_filter=1`` everywhere (IPv4) and, for IPv6, which has no
rp_filter, with rules (``from ADDR iif LINK lookup main`` at 100, ``from ADDR
blackhole`` at 101) when ``ipv6_rpf``. Each private IP is routed (``/32``,
``/128``) to the link of the ENI it is assigned to; each vswitch gateway sits
on the router end of its ENI's link with ``noprefixroute``. Its ``rh`` link
leads to the host.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .commands import ip, set_sysctls
from .enis import (HOST_IP, HOST_IPV6, ROUTER_HOST_SIDE_IP, ROUTER_HOST_SIDE_IPV6,
                   RPF6_ACCEPT_PRIORITY, RPF6_DROP_PRIORITY, Eni)


def configure_forwarding(router: str, base: dict[str, Any], *, ipv6: bool) -> None:
    """Forwarding on, strict IPv4 reverse-path filtering on every interface."""
    set_sysctls(router, {
        **base,
        "net.ipv4.ip_forward": 1,
        "net.ipv4.conf.all.rp_filter": 1,
        "net.ipv4.conf.default.rp_filter": 1,
        "net.ipv4.conf.lo.rp_filter": 1,
        **({"net.ipv6.conf.all.forwarding": 1, "net.ipv6.conf.default.forwarding": 1}
           if ipv6 else {}),
    })


def connect_host(router: str, host: str, *, ipv6: bool) -> None:
    """The veth router ``rh`` <-> host ``eth0``; the host's default route via the router."""
    ip(router, "link", "add", "rh", "type", "veth", "peer", "name", "eth0", "netns", host)
    set_sysctls(router, {"net.ipv4.conf.rh.rp_filter": 1})
    ip(router, "addr", "add", f"{ROUTER_HOST_SIDE_IP}/24", "dev", "rh")
    ip(router, "link", "set", "rh", "up")
    ip(host, "addr", "add", f"{HOST_IP}/24", "dev", "eth0")
    ip(host, "link", "set", "eth0", "up")
    ip(host, "route", "add", "default", "via", ROUTER_HOST_SIDE_IP)
    if ipv6:
        ip(router, "-6", "addr", "add", f"{ROUTER_HOST_SIDE_IPV6}/64", "dev", "rh", "nodad")
        ip(host, "-6", "addr", "add", f"{HOST_IPV6}/64", "dev", "eth0", "nodad")
        ip(host, "-6", "route", "add", "default", "via", ROUTER_HOST_SIDE_IPV6)


def connect_eni(router: str, guest: str, eni: Eni, router_ifname: str, *, ipv6: bool,
                ipv6_rpf: bool) -> None:
    """A veth for ``eni``: the router end ``router_ifname`` holds the gateway and
    routes the ENI's IPs; the other end moves into ``guest``."""
    rif = router_ifname
    eni.router_ifname = rif
    # Both ends are created in the router; the guest end is moved into
    # the guest only once the router side is ready, so it appears there
    # already named and with its MAC, DOWN and unconfigured.
    queues = ["numtxqueues", eni.queues, "numrxqueues", eni.queues] if eni.queues > 1 else []
    ip(router, "link", "add", eni.ifname, "address", eni.mac, *queues, "type", "veth",
       "peer", "name", rif)
    try:
        set_sysctls(router, {f"net.ipv4.conf.{rif}.rp_filter": 1})
        ip(router, "link", "set", rif, "up")
        ip(router, "addr", "add", f"{eni.gateway}/{eni.prefixlen}", "dev", rif, "noprefixroute")
        for addr in eni.ips:
            route_ipv4(router, eni, addr)
        if ipv6 and eni.ipv6_gateway:
            gw_len = 64 if ipaddress.ip_address(eni.ipv6_gateway).is_link_local \
                else eni.ipv6_prefixlen
            ip(router, "-6", "addr", "add", f"{eni.ipv6_gateway}/{gw_len}",
               "dev", rif, "nodad", "noprefixroute")
            for addr in eni.ipv6s:
                route_ipv6(router, eni, addr, rpf=ipv6_rpf)
        ip(router, "link", "set", eni.ifname, "netns", guest)
    except BaseException:
        ip(router, "link", "del", rif, check=False)
        raise


def disconnect_eni(router: str, eni: Eni, *, ipv6: bool, ipv6_rpf: bool) -> None:
    """Delete the ENI's veth by its router end (whatever the guest renamed it to)."""
    ip(router, "link", "del", eni.router_ifname)
    if ipv6:
        for addr in eni.ipv6s:
            rpf6_rules(router, "del", eni, addr, rpf=ipv6_rpf)


def route_ipv4(router: str, eni: Eni, addr: str) -> None:
    ip(router, "route", "add", f"{addr}/32", "dev", eni.router_ifname, "src", eni.gateway)


def unroute_ipv4(router: str, eni: Eni, addr: str) -> None:
    ip(router, "route", "del", f"{addr}/32", "dev", eni.router_ifname)


def route_ipv6(router: str, eni: Eni, addr: str, *, rpf: bool) -> None:
    """Route ``addr``/128 to the ENI's link (+ the strict RPF rules)."""
    ip(router, "-6", "route", "add", f"{addr}/128", "dev", eni.router_ifname)
    rpf6_rules(router, "add", eni, addr, rpf=rpf)


def unroute_ipv6(router: str, eni: Eni, addr: str, *, rpf: bool) -> None:
    ip(router, "-6", "route", "del", f"{addr}/128", "dev", eni.router_ifname)
    rpf6_rules(router, "del", eni, addr, rpf=rpf)


def rpf6_rules(router: str, verb: str, eni: Eni, addr: str, *, rpf: bool) -> None:
    if not rpf:
        return
    ip(router, "-6", "rule", verb, "from", f"{addr}/128", "iif", eni.router_ifname,
       "lookup", "main", "priority", RPF6_ACCEPT_PRIORITY, check=verb == "add")
    ip(router, "-6", "rule", verb, "from", f"{addr}/128", "blackhole",
       "priority", RPF6_DROP_PRIORITY, check=verb == "add")


def set_rp_filter(router: str, ifnames: list[str], value: int) -> None:
    set_sysctls(router, {f"net.ipv4.conf.{i}.rp_filter": value for i in ifnames})
