"""Metadata documents for the unit tests (examples/metadata.json and
variations), parsed by the agent's model; files written under a tmp_path.

Nothing here touches the host.
"""

from __future__ import annotations

import copy
import json
import os
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from eni_agent.model import Metadata, parse_metadata

from .commands import REPO
from .enis import PRIMARY_MAC

EXAMPLE_PATH = REPO / "examples" / "metadata.json"
EXAMPLE_BYTES = EXAMPLE_PATH.read_bytes()
_EXAMPLE_DOC = json.loads(EXAMPLE_BYTES)

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


def example_metadata() -> Metadata:
    return parse_metadata(EXAMPLE_BYTES)
