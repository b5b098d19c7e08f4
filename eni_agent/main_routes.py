"""Routes the agent puts in `main`: connections the host opens (not only
replies) to a management network leave by its ENI, from the ENI's address.

  <vswitch cidr> dev L src <ENI primary IP>          (subnet_routes, IPv6 alike)
      for an ENI whose vswitch is not the primary's; an ENI in the primary's
      vswitch adds nothing (main reaches it through the primary already).
  <to> via <ENI gateway> dev L onlink src <ENI primary IP>   ([[routes]])
      for each destination the config routes through an ENI (its IPv6
      gateway and first IPv6 address for an IPv6 destination).

All marked, so they go with the ENI (its link is gone: the plan removes
them) and with `cleanup`. A destination `main` already has a route for that
the agent did not add is never replaced: it is left out, and said so.
When two ENIs' vswitch routes name one destination, the ENI on the lowest
ifindex has it; a [[routes]] destination wins over a vswitch route.
"""

from __future__ import annotations

from ipaddress import ip_network
from typing import Sequence

from eni_agent.config import Config
from eni_agent.model import Eni, Metadata
from eni_agent.state import MAIN_TABLE, Link, Network, Observed, Route


def candidate_destinations(metadata: Metadata, config: Config) -> list[Network]:
    """Every destination the agent may route in `main` for this metadata and
    config, attached or not: what to ask the kernel about before planning
    (a route in main that is not the agent's is not read from the kernel's
    dumps, which skip main's prefixed foreign routes: see netlink/marshal.py)."""
    found: list[Network] = []
    if config.subnet_routes:
        for eni in metadata.secondary_enis:
            found.append(eni.cidr)
            if eni.ipv6_cidr is not None:
                found.append(eni.ipv6_cidr)
    for spec in config.routes:
        found.extend(spec.to)
    return list(dict.fromkeys(found))


def main_routes(metadata: Metadata, matched: Sequence[tuple[Eni, Link]], observed: Observed,
                config: Config) -> tuple[frozenset[Route], tuple[str, ...]]:
    """(the routes in `main` the agent wants, notes for the operator)."""
    notes: list[str] = []
    wanted: dict[Network, Route] = {}
    ordered = sorted(matched, key=lambda pair: pair[1].index)
    if config.subnet_routes:
        primary = _primary_vswitches(metadata, observed)
        for eni, link in ordered:
            for route in _vswitch_routes(eni, link):
                if route.dst not in primary:
                    wanted.setdefault(route.dst, route)
    by_name = {key: (eni, link) for eni, link in ordered for key in (eni.mac, eni.eni_id) if key}
    for spec in config.routes:
        found = by_name.get(spec.eni)
        if found is None:
            notes.append(f"[[routes]] eni {spec.eni} is not attached (or not configured): "
                         f"its routes to {', '.join(map(str, spec.to))} wait for it")
            continue
        eni, link = found
        for dst in spec.to:
            route = _config_route(eni, link, dst)
            if route is None:
                notes.append(f"[[routes]] {dst} through {spec.eni}: the ENI has no IPv6 "
                             "address or gateway: not routed")
            else:
                wanted[dst] = route
    routes = set()
    for dst, route in sorted(wanted.items(), key=lambda item: item[1].sort_key()):
        if (dst.version, dst.network_address, dst.prefixlen) in observed.foreign_main_destinations:
            notes.append(f"main already has a route to {dst} that eni-agent did not add: left "
                         f"as it is, so {dst} is not routed through {_name(route, matched)}")
        else:
            routes.add(route)
    return frozenset(routes), tuple(notes)


def _vswitch_routes(eni: Eni, link: Link) -> list[Route]:
    routes = [Route(MAIN_TABLE, eni.cidr, link.index, None, eni.primary_ip)]
    if eni.ipv6_cidr is not None and eni.ipv6s:
        routes.append(Route(MAIN_TABLE, eni.ipv6_cidr, link.index, None, eni.ipv6s[0]))
    return routes


def _config_route(eni: Eni, link: Link, dst: Network) -> Route | None:
    if dst.version == 4:
        return Route(MAIN_TABLE, dst, link.index, eni.gateway, eni.primary_ip)
    if eni.ipv6_gateway is None or not eni.ipv6s:
        return None
    return Route(MAIN_TABLE, dst, link.index, eni.ipv6_gateway, eni.ipv6s[0])


def _primary_vswitches(metadata: Metadata, observed: Observed) -> set[Network]:
    """The primary's vswitch networks: from the metadata, and (its entry may
    be thin) from the addresses on the primary's link (its DHCP address)."""
    networks: set[Network] = set()
    for eni in metadata.enis:
        if eni.mac == metadata.primary_mac:
            networks.add(eni.cidr)
            if eni.ipv6_cidr is not None:
                networks.add(eni.ipv6_cidr)
    indexes = {link.index for link in observed.links if link.mac == metadata.primary_mac}
    networks |= {ip_network((a.ip, a.prefixlen), strict=False)
                 for a in observed.foreign_addresses
                 if a.index in indexes and not a.ip.is_link_local}
    return networks


def _name(route: Route, matched: Sequence[tuple[Eni, Link]]) -> str:
    return next((link.name for _, link in matched if link.index == route.oif), f"#{route.oif}")
