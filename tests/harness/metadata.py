"""Metadata documents in the ECS layout, built from a topology, and the ways
tests write them (fresh, atomically renamed, rewritten in place)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .enis import DEFAULT_VPC_CIDR, DEFAULT_VPC_ID, Eni

if TYPE_CHECKING:
    from .topology import Topology


def eni_metadata(eni: Eni, *, vpc_cidr: str = DEFAULT_VPC_CIDR,
                 vpc_id: str = DEFAULT_VPC_ID) -> dict[str, Any]:
    """The ECS metadata entry (``network/interfaces/macs/<mac>``) for one ENI."""
    return {
        "network-interface-id": eni.eni_id or f"eni-{eni.mac.replace(':', '')}",
        "primary-ip-address": eni.primary_ip,
        "private-ipv4s": list(eni.ips),
        "netmask": eni.netmask,
        "gateway": eni.gateway,
        "vswitch-cidr-block": eni.cidr,
        "vpc-cidr-block": vpc_cidr,
        "vswitch-id": eni.vswitch_id or f"vsw-{eni.network.network_address}".replace(".", "-"),
        "vpc-id": vpc_id,
        # IPv6 fields only for an ENI in an IPv6 vswitch; ipv6s only if it has some
        **({"ipv6-gateway": eni.ipv6_gateway, "vswitch-ipv6-cidr-block": eni.ipv6_cidr}
           if eni.ipv6_cidr else {}),
        **({"ipv6s": list(eni.ipv6s)} if eni.ipv6s else {}),
    }


def build_metadata(topo: Topology, enis: Iterable[Eni] | None = None) -> dict[str, Any]:
    """ECS-layout metadata document for the topology's primary NIC and its
    currently attached ENIs (or for the primary plus ``enis`` if given)::

        {"mac": PRIMARY_MAC, "network": {"interfaces": {"macs": {MAC: {...}}}}}

    The result is a fresh dict: tweak it freely before writing it.
    """
    selected = list(topo.enis.values()) if enis is None else list(enis)
    macs = {e.mac: eni_metadata(e, vpc_cidr=topo.vpc_cidr, vpc_id=topo.vpc_id)
            for e in [topo.primary, *selected]}
    return {"mac": topo.primary.mac, "network": {"interfaces": {"macs": macs}}}


def write_metadata(doc: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``doc`` as JSON to ``path`` with mode 0600; returns the Path."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)  # also if the file already existed
        json.dump(doc, fh, indent=2, sort_keys=True)
        fh.write("\n")
    return path


def metadata_file(tmp_path: Path, doc: dict) -> Path:
    """Write ``doc`` to ``tmp_path/etc/metadata.json`` (0600, in a 0700 directory)."""
    directory = Path(tmp_path) / "etc"
    directory.mkdir(mode=0o700, exist_ok=True)
    return write_metadata(doc, directory / "metadata.json")


def write_json_atomically(doc: dict, path: Path) -> None:
    """A config manager's update: write a temp file in the same directory, rename it."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.rename(tmp, path)


def write_in_place(path: Path, data: bytes) -> None:
    """An editor's in-place update: open with O_TRUNC, one write, close."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
