"""The agent's own values for the unit tests: configs, links, and the state
it owns once the example's secondary ENI is configured on eth1."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from eni_agent.config import Config, make_config
from eni_agent.state import Address, AltName, Link, Observed, Route, Rule

from .documents import SECOND_ENI_ID, SECOND_MAC, THIRD_MAC
from .enis import PRIMARY_MAC

# table_base 10000, rule_priority 10000, protocol 234. The tests of the ENI
# tables and rules leave out the vswitch routes in `main` (subnet_routes, on by
# default): test_desired_main_routes.py is about those.
CONFIG = Config(subnet_routes=False)


def config_with(**settings) -> Config:
    """A validated config (MACs lower-cased) with these settings (subnet_routes
    off unless given)."""
    return make_config({"subnet_routes": False, **settings})

ETH0 = Link(index=2, name="eth0", mac=PRIMARY_MAC, up=True)
ETH1 = Link(index=3, name="eth1", mac=SECOND_MAC, up=True)
ETH1_ALTNAME = AltName(3, SECOND_ENI_ID)  # given by the agent once it configured eth1
ETH1_DOWN = Link(index=3, name="eth1", mac=SECOND_MAC, up=False, promote_secondaries=False)
ETH2 = Link(index=4, name="eth2", mac=THIRD_MAC, up=True)

NET1 = IPv4Network("10.0.1.0/24")
DEFAULT = IPv4Network("0.0.0.0/0")
GW1 = IPv4Address("10.0.1.253")
IP10, IP11 = IPv4Address("10.0.1.10"), IPv4Address("10.0.1.11")
TABLE1 = CONFIG.table_base + ETH1.index


def eth1_state(index: int = ETH1.index, table: int = TABLE1, gateway: IPv4Address = GW1,
               prefixlen: int = 24, ips: tuple[IPv4Address, ...] = (IP10, IP11)):
    """What the agent owns once the example's secondary ENI is configured on eth1."""
    addresses = frozenset(Address(index, ip, prefixlen) for ip in ips)
    routes = frozenset({Route(table, IPv4Network(f"10.0.1.0/{prefixlen}", strict=False), index),
                        Route(table, DEFAULT, index, gateway)})
    rules = frozenset(Rule(CONFIG.rule_priority, ip, table) for ip in ips)
    return addresses, routes, rules


def converged_observed(links: tuple[Link, ...] = (ETH0, ETH1), **foreign: Any) -> Observed:
    addresses, routes, rules = eth1_state()
    foreign.setdefault("altnames", frozenset({ETH1_ALTNAME}))
    return Observed(links=links, addresses=addresses, routes=routes, rules=rules, **foreign)
