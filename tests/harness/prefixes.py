"""A prefix delegated to eth1 (``ipv4-prefixes``): the router routes it to the
ENI, and one of its addresses sits on the guest's ``lo`` (a container's, say)."""

from __future__ import annotations

from typing import Any, Callable

from .commands import ip
from .enis import make_eni
from .kernel import owned_rules
from .metadata import build_metadata
from .topology import Topology

PREFIX, PREFIX_IP = "10.0.1.32/28", "10.0.1.33"


def prefix_topology(topology_factory: Callable[..., Topology]) -> Topology:
    """A topology with eth1 (make_eni(1)) and PREFIX delegated to it."""
    t = topology_factory([make_eni(1)])
    eni = t.eni("eth1")
    ip(t.router, "route", "add", PREFIX, "dev", eni.router_ifname, "src", eni.gateway)
    ip(t.guest, "addr", "add", f"{PREFIX_IP}/32", "dev", "lo")
    return t


def with_prefixes(t: Topology, prefixes: Any) -> dict:
    """build_metadata(t) with eth1's ``ipv4-prefixes`` set to ``prefixes``."""
    doc = build_metadata(t)
    doc["network"]["interfaces"]["macs"][t.eni("eth1").mac]["ipv4-prefixes"] = prefixes
    return doc


def prefix_rules(t: Topology) -> list[dict]:
    """The agent's rules for prefixes (not for single addresses)."""
    return [r for r in owned_rules(t) if r.get("srclen") not in (None, 32)]
