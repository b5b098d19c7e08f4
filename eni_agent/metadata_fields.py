"""The metadata's field types: each parses the service's form of one value
(text forms of lists included) into an address, a network, an id, or raises
`invalid` with the reason users see."""

from __future__ import annotations

import json
import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Annotated, Optional, Tuple

from pydantic import BeforeValidator

from eni_agent.errors import one_line
from eni_agent.validation import invalid, json_type, show

_THIS_NETWORK = IPv4Network("0.0.0.0/8")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_ENI_ID_RE = re.compile(r"[\x21-\x7e]{1,128}")


def normalize_mac(value: object) -> str | None:
    """Lower-case a colon-separated MAC; None if it is not one."""
    if not isinstance(value, str):
        return None
    mac = value.strip().lower()
    return mac if _MAC_RE.match(mac) else None


def parse_ipv4(value: object) -> IPv4Address:
    if not isinstance(value, str):
        raise invalid(f"must be an IPv4 address string, got {json_type(value)}")
    try:
        return IPv4Address(value)
    except ValueError:
        raise invalid(f"not an IPv4 address: {show(value)}") from None


def parse_ipv6(value: object) -> IPv6Address:
    if not isinstance(value, str):
        raise invalid(f"must be an IPv6 address string, got {json_type(value)}")
    if "%" in value:  # a zone would make the address compare unequal to the kernel's
        raise invalid(f"an address with a zone (%) is not allowed: {show(value)}")
    try:
        ip = IPv6Address(value)
    except ValueError:
        raise invalid(f"not an IPv6 address: {show(value)}") from None
    if ip.is_multicast or ip.is_loopback or ip.is_unspecified or ip.ipv4_mapped:
        raise invalid(f"{ip} is not a unicast address")
    return ip


def vswitch_problem(cidr: IPv4Network) -> str | None:
    if cidr.prefixlen > 30 or cidr.prefixlen < 8:
        return f"{cidr} has an unusable prefix length"
    if (cidr.is_loopback or cidr.is_link_local or cidr.is_multicast or cidr.is_reserved
            or cidr.subnet_of(_THIS_NETWORK)):
        return f"{cidr} is not a unicast network"
    return None


def parse_vswitch_cidr(value: object) -> IPv4Network:
    if not isinstance(value, str):
        raise invalid(f"must be a CIDR string, got {json_type(value)}")
    try:
        cidr = IPv4Network(value, strict=True)
    except ValueError as e:
        raise invalid(f"not an IPv4 CIDR: {show(value)} ({one_line(e)})") from None
    problem = vswitch_problem(cidr)
    if problem:
        raise invalid(problem)
    return cidr


def parse_vswitch_cidr6(value: object) -> IPv6Network:
    if not isinstance(value, str):
        raise invalid(f"must be a CIDR string, got {json_type(value)}")
    try:
        if "%" in value:
            raise ValueError("a zone (%) is not allowed")
        cidr = IPv6Network(value, strict=True)
    except ValueError as e:
        raise invalid(f"not an IPv6 CIDR: {show(value)} ({one_line(e)})") from None
    if not 16 <= cidr.prefixlen <= 124:
        raise invalid(f"{cidr} has an unusable prefix length")
    if cidr.is_multicast or cidr.is_loopback or cidr.is_link_local or cidr.is_unspecified:
        raise invalid(f"{cidr} is not a unicast network")
    return cidr


def parse_array(value: object) -> object:
    """A list as it is; absent (null) as empty; and the service's text forms
    of a list, as `meta-data/all` keeps them: `private-ipv4s` is JSON text
    (`["10.0.1.10"]`), `ipv6s` looks like `[a,b]` but is not JSON."""
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                items = json.loads(text)
            except (ValueError, RecursionError):
                items = [item.strip() for item in text[1:-1].split(",")]
                items = [] if items == [""] else items
            if isinstance(items, list):
                return items
        raise invalid(f"must be an array, got a string that is not one: {show(value)}")
    if not isinstance(value, list):
        raise invalid(f"must be an array, got {json_type(value)}")
    return value


def blank_is_none(parse):
    """An optional value: null or "" mean "not given"."""
    def optional(value: object) -> object:
        return None if value is None or value == "" else parse(value)
    return optional


def null_is_none(parse):
    def optional(value: object) -> object:
        return None if value is None else parse(value)
    return optional


def parse_prefix4(value: object) -> IPv4Network:
    if not isinstance(value, str):
        raise invalid(f"must be a CIDR string, got {json_type(value)}")
    try:
        return IPv4Network(value, strict=True)
    except ValueError as e:
        raise invalid(f"not an IPv4 CIDR: {show(value)} ({one_line(e)})") from None


def parse_prefix6(value: object) -> IPv6Network:
    if not isinstance(value, str):
        raise invalid(f"must be a CIDR string, got {json_type(value)}")
    try:
        if "%" in value:
            raise ValueError("a zone (%) is not allowed")
        return IPv6Network(value, strict=True)
    except ValueError as e:
        raise invalid(f"not an IPv6 CIDR: {show(value)} ({one_line(e)})") from None


def parse_eni_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _ENI_ID_RE.fullmatch(value):
        raise invalid(f"not a valid id: {show(value)}")
    return value


OptionalIPv4 = Annotated[Optional[IPv4Address], BeforeValidator(blank_is_none(parse_ipv4))]
IPv4List = Annotated[Tuple[Annotated[IPv4Address, BeforeValidator(parse_ipv4)], ...],
                     BeforeValidator(parse_array)]
IPv6List = Annotated[Tuple[Annotated[IPv6Address, BeforeValidator(parse_ipv6)], ...],
                     BeforeValidator(parse_array)]
IPv4Prefixes = Annotated[Tuple[Annotated[IPv4Network, BeforeValidator(parse_prefix4)], ...],
                         BeforeValidator(parse_array)]
IPv6Prefixes = Annotated[Tuple[Annotated[IPv6Network, BeforeValidator(parse_prefix6)], ...],
                         BeforeValidator(parse_array)]

