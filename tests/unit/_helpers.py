"""Shared builders for the unit tests: metadata documents, configs, observed state.

Nothing here touches the host; files are only written under a test's tmp_path.
"""

from __future__ import annotations

import copy
import json
import os
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from eni_agent.config import Config, make_config
from eni_agent.model import Metadata, parse_metadata
from eni_agent.state import Address, AltName, Link, Observed, Route, Rule

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PATH = REPO / "examples" / "metadata.json"
EXAMPLE_BYTES = EXAMPLE_PATH.read_bytes()
_EXAMPLE_DOC = json.loads(EXAMPLE_BYTES)

PRIMARY_MAC = "00:16:3e:00:00:01"
SECOND_MAC = "00:16:3e:00:01:01"
THIRD_MAC = "00:16:3e:00:02:01"
SECOND_ENI_ID = "eni-bp1second"  # the example's secondary ENI


def example_doc() -> dict[str, Any]:
    """A fresh, mutable copy of examples/metadata.json."""
    return copy.deepcopy(_EXAMPLE_DOC)


def macs_of(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["network"]["interfaces"]["macs"]


def eni_fields(ip: str | list[str], cidr: str, gateway: str, **extra: Any) -> dict[str, Any]:
    """One ENI's metadata fields; the first IP is the primary."""
    ips = [ip] if isinstance(ip, str) else list(ip)
    fields = {"primary-ip-address": ips[0], "private-ipv4s": ips, "vswitch-cidr-block": cidr,
              "netmask": str(IPv4Network(cidr).netmask), "gateway": gateway}
    fields.update(extra)
    return fields


def make_doc(enis: dict[str, dict[str, Any]], primary_mac: str = PRIMARY_MAC) -> dict[str, Any]:
    """A metadata document with the example's primary ENI plus `enis`."""
    doc = example_doc()
    doc["mac"] = primary_mac
    table = macs_of(doc)
    del table[SECOND_MAC]
    table.update(enis)
    return doc


def parse(doc: Any) -> Metadata:
    return parse_metadata(json.dumps(doc))


def second_eni(doc: dict[str, Any]) -> dict[str, Any]:
    return macs_of(doc)[SECOND_MAC]


def assert_one_line(message: str) -> None:
    assert message, "empty message"
    assert "\n" not in message and "\r" not in message, repr(message)
    assert len(message.splitlines()) == 1, repr(message)


def write_file(path: Path, content: bytes | str, mode: int = 0o600) -> Path:
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


# -- observed / desired state --------------------------------------------------

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


def example_metadata() -> Metadata:
    return parse_metadata(EXAMPLE_BYTES)


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
