"""What the metadata says: the ECS metadata tree, parsed and validated.

The document is the JSON form of the ECS metadata tree (`mac` at the top,
`network.interfaces.macs.<mac>.<field>` per ENI), so one parser serves a file
and the live service. Nothing here touches the host: constructing a `Metadata`
never looks at a kernel link.

Every semantic error becomes an `InvalidInput` whose message is one line naming
the ENI and the field, so the caller can refuse the document before applying
anything.
"""

from __future__ import annotations

import ipaddress
import json
import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import NamedTuple

from eni_agent.errors import InvalidInput, one_line

MAX_DOCUMENT_BYTES = 1 << 20
_THIS_NETWORK = IPv4Network("0.0.0.0/8")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class Eni(NamedTuple):
    """One attached ENI, normalised: lower-case MAC, primary IP first.

    Built only by `_Validator`, which checks every value with messages naming
    the ENI and the field.
    """

    mac: str
    primary_ip: IPv4Address
    ips: tuple[IPv4Address, ...]
    cidr: IPv4Network
    gateway: IPv4Address
    eni_id: str | None = None
    # IPv6: all three, or none (an IPv4-only ENI).
    ipv6s: tuple[IPv6Address, ...] = ()
    ipv6_cidr: IPv6Network | None = None
    ipv6_gateway: IPv6Address | None = None

    @property
    def name(self) -> str:
        """How messages refer to this ENI: its id when known, else its MAC."""
        return f"{self.eni_id} ({self.mac})" if self.eni_id else self.mac


class Metadata(NamedTuple):
    primary_mac: str
    enis: tuple[Eni, ...]  # every listed ENI, the primary too, sorted by MAC

    @property
    def secondary_enis(self) -> tuple[Eni, ...]:
        return tuple(eni for eni in self.enis if eni.mac != self.primary_mac)


def parse_metadata(data: bytes | str, source: str = "metadata") -> Metadata:
    """Parse and validate a metadata document, or raise `InvalidInput`."""
    if len(data) > MAX_DOCUMENT_BYTES or (
            isinstance(data, str) and len(data.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES):
        raise InvalidInput(f"invalid metadata {source}: document larger than {MAX_DOCUMENT_BYTES} bytes")
    if isinstance(data, bytes):
        # JSON is UTF-8 (RFC 8259); json.loads(bytes) would guess UTF-16/32.
        try:
            data = data.decode("utf-8-sig")  # a leading BOM (some editors) is fine
        except UnicodeDecodeError as e:
            raise InvalidInput(f"invalid metadata {source}: not valid JSON: not UTF-8 "
                               f"(byte {e.start})") from None
    try:
        doc = json.loads(data, object_pairs_hook=_reject_duplicate_keys)
    except _DuplicateKey as e:
        raise InvalidInput(f"invalid metadata {source}: duplicate key {_show(e.args[0])} in a JSON object") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, huge ints
        raise InvalidInput(f"invalid metadata {source}: not valid JSON: {one_line(e)}") from None
    return metadata_from_tree(doc, source)


def metadata_from_tree(doc: object, source: str = "metadata") -> Metadata:
    """Validate an already-decoded metadata tree (a file's JSON, or the service's)."""
    return _Validator(source).document(doc)


class _DuplicateKey(Exception):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _show(value: object) -> str:
    """A value quoted for a one-line message, cut short if long."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(type(value).__name__)
    return text if len(text) <= 60 else text[:57] + "..."


def normalize_mac(value: object) -> str | None:
    """Lower-case a colon-separated MAC; None if it is not one."""
    if not isinstance(value, str):
        return None
    mac = value.strip().lower()
    return mac if _MAC_RE.match(mac) else None


def _json_type(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value), "a value")


class _Validator:
    """Walks the decoded tree; each failure names where it is, in one line."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str) -> InvalidInput:
        return InvalidInput(f"invalid metadata {self.source}: {where}: {problem}")

    def document(self, doc: object) -> Metadata:
        if not isinstance(doc, dict):
            raise self.fail("document", f"must be a JSON object, got {_json_type(doc)}")
        if "mac" not in doc:
            raise self.fail("mac", "missing (the primary NIC's MAC is required)")
        primary_mac = normalize_mac(doc["mac"])
        if primary_mac is None:
            raise self.fail("mac", f"not a MAC address: {_show(doc['mac'])}")
        macs = self.macs_table(doc)
        enis: dict[str, Eni] = {}
        for raw_mac, fields in macs.items():
            mac = normalize_mac(raw_mac)
            if mac is None:
                raise self.fail(f"ENI {_show(raw_mac)}", "key is not a MAC address")
            if mac in enis:
                raise self.fail(f"ENI {mac}", "listed twice (MACs match case-insensitively)")
            if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
                raise self.fail(f"ENI {mac}", "not a unicast MAC address")
            enis[mac] = self.eni(mac, fields)
        self.check_unique_ips(enis.values())
        return Metadata(primary_mac=primary_mac,
                                        enis=tuple(enis[m] for m in sorted(enis)))

    def macs_table(self, doc: dict) -> dict:
        node: object = doc
        path = []
        for key in ("network", "interfaces", "macs"):
            path.append(key)
            if not isinstance(node, dict) or key not in node:
                raise self.fail(".".join(path), "missing")
            node = node[key]
        if not isinstance(node, dict):
            raise self.fail("network.interfaces.macs", f"must be an object, got {_json_type(node)}")
        return node

    def eni(self, mac: str, fields: object) -> Eni:
        where = f"ENI {mac}"
        if not isinstance(fields, dict):
            raise self.fail(where, f"must be an object, got {_json_type(fields)}")
        eni_id = fields.get("network-interface-id")
        if eni_id is not None:
            if not isinstance(eni_id, str) or not re.fullmatch(r"[\x21-\x7e]{1,128}", eni_id):
                raise self.fail(f"{where}: network-interface-id", f"not a valid id: {_show(eni_id)}")
            where = f"ENI {mac} ({eni_id})"

        primary = self.optional_ip(fields, "primary-ip-address", where)
        private = self.ip_list(fields, "private-ipv4s", where)
        cidr = self.cidr(fields, where, primary or (private[0] if private else None))
        gateway = self.optional_ip(fields, "gateway", where)
        if gateway is None:
            raise self.fail(f"{where}: gateway", "missing")

        ips = list(dict.fromkeys(([primary] if primary else []) + private))
        if not ips:
            raise self.fail(where, "no IP address (neither primary-ip-address nor private-ipv4s)")
        for field, ip in [("primary-ip-address", primary)] + [("private-ipv4s", ip) for ip in private]:
            if ip is not None:
                self.check_host_in(cidr, ip, f"{where}: {field}")
        self.check_host_in(cidr, gateway, f"{where}: gateway")
        if gateway in ips:
            raise self.fail(f"{where}: gateway", f"{gateway} is also an address of the ENI")
        ipv6s, ipv6_cidr, ipv6_gateway = self.ipv6(fields, where)
        return Eni(mac=mac, eni_id=eni_id, primary_ip=ips[0], ips=tuple(ips),
                                   cidr=cidr, gateway=gateway, ipv6s=ipv6s, ipv6_cidr=ipv6_cidr,
                                   ipv6_gateway=ipv6_gateway)

    def ipv6(self, fields: dict, where: str):
        """(ipv6s, vswitch IPv6 CIDR, IPv6 gateway): all three, or none.

        An ENI in an IPv6-enabled vswitch but with no IPv6 address assigned is
        served with the CIDR and gateway and no `ipv6s`: that ENI is IPv4-only.
        Addresses without a CIDR or gateway, or just one of the CIDR and the
        gateway, cannot be configured: the document is refused.
        """
        raw_ips = fields.get("ipv6s")
        raw_cidr = fields.get("vswitch-ipv6-cidr-block")
        raw_gateway = fields.get("ipv6-gateway")
        if raw_ips is not None and not isinstance(raw_ips, list):
            raise self.fail(f"{where}: ipv6s", f"must be an array, got {_json_type(raw_ips)}")
        ips = [self.ip6(item, f"{where}: ipv6s[{i}]") for i, item in enumerate(raw_ips or [])]
        present = {"ipv6s": bool(ips), "vswitch-ipv6-cidr-block": raw_cidr not in (None, ""),
                   "ipv6-gateway": raw_gateway not in (None, "")}
        if not any(present.values()):
            return (), None, None
        missing = [name for name, there in present.items() if not there]
        if (ips and missing) or (not ips and len(missing) == 2):
            missing = [name for name in missing if name != "ipv6s" or ips]
            raise self.fail(f"{where}: {missing[0]}",
                            "missing while other IPv6 fields are set (give ipv6s, "
                            "vswitch-ipv6-cidr-block and ipv6-gateway together)")
        if not ips:
            return (), None, None
        cidr = self.cidr6(raw_cidr, f"{where}: vswitch-ipv6-cidr-block")
        gateway = self.ip6(raw_gateway, f"{where}: ipv6-gateway")
        for i, ip in enumerate(ips):
            if ip not in cidr:
                raise self.fail(f"{where}: ipv6s[{i}]", f"{ip} is outside vswitch-ipv6-cidr-block {cidr}")
            if ip == cidr.network_address:
                raise self.fail(f"{where}: ipv6s[{i}]", f"{ip} is the subnet-router anycast address")
        if gateway not in cidr and not gateway.is_link_local:
            raise self.fail(f"{where}: ipv6-gateway",
                            f"{gateway} is neither in {cidr} nor link-local")
        if gateway in ips:
            raise self.fail(f"{where}: ipv6-gateway", f"{gateway} is also an address of the ENI")
        return tuple(dict.fromkeys(ips)), cidr, gateway

    def ip6(self, value: object, where: str) -> IPv6Address:
        if not isinstance(value, str):
            raise self.fail(where, f"must be an IPv6 address string, got {_json_type(value)}")
        if "%" in value:  # a zone would make the address compare unequal to the kernel's
            raise self.fail(where, f"an address with a zone (%) is not allowed: {_show(value)}")
        try:
            ip = IPv6Address(value)
        except ValueError:
            raise self.fail(where, f"not an IPv6 address: {_show(value)}") from None
        if ip.is_multicast or ip.is_loopback or ip.is_unspecified or ip.ipv4_mapped:
            raise self.fail(where, f"{ip} is not a unicast address")
        return ip

    def cidr6(self, value: object, where: str) -> IPv6Network:
        if not isinstance(value, str):
            raise self.fail(where, f"must be a CIDR string, got {_json_type(value)}")
        try:
            cidr = IPv6Network(value, strict=True)
        except ValueError as e:
            raise self.fail(where, f"not an IPv6 CIDR: {_show(value)} ({one_line(e)})") from None
        if not 16 <= cidr.prefixlen <= 124:
            raise self.fail(where, f"{cidr} has an unusable prefix length")
        if cidr.is_multicast or cidr.is_loopback or cidr.is_link_local or cidr.is_unspecified:
            raise self.fail(where, f"{cidr} is not a unicast network")
        return cidr

    def ip(self, value: object, where: str) -> IPv4Address:
        if not isinstance(value, str):
            raise self.fail(where, f"must be an IPv4 address string, got {_json_type(value)}")
        try:
            return IPv4Address(value)
        except ValueError:
            raise self.fail(where, f"not an IPv4 address: {_show(value)}") from None

    def optional_ip(self, fields: dict, key: str, where: str) -> IPv4Address | None:
        value = fields.get(key)
        if value is None or value == "":
            return None
        return self.ip(value, f"{where}: {key}")

    def ip_list(self, fields: dict, key: str, where: str) -> list[IPv4Address]:
        value = fields.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(f"{where}: {key}", f"must be an array, got {_json_type(value)}")
        return [self.ip(item, f"{where}: {key}[{i}]") for i, item in enumerate(value)]

    def cidr(self, fields: dict, where: str, some_ip: IPv4Address | None) -> IPv4Network:
        value = fields.get("vswitch-cidr-block")
        netmask = self.optional_ip(fields, "netmask", where)
        if value is None:
            if netmask is None or some_ip is None:
                raise self.fail(f"{where}: vswitch-cidr-block", "missing")
            try:
                cidr = IPv4Network(f"{some_ip}/{netmask}", strict=False)
            except ValueError:
                raise self.fail(f"{where}: netmask", f"not a netmask: {netmask}") from None
        else:
            if not isinstance(value, str):
                raise self.fail(f"{where}: vswitch-cidr-block",
                                f"must be a CIDR string, got {_json_type(value)}")
            try:
                cidr = IPv4Network(value, strict=True)
            except ValueError as e:
                raise self.fail(f"{where}: vswitch-cidr-block",
                                f"not an IPv4 CIDR: {_show(value)} ({one_line(e)})") from None
        if cidr.prefixlen > 30 or cidr.prefixlen < 8:
            raise self.fail(f"{where}: vswitch-cidr-block", f"{cidr} has an unusable prefix length")
        if (cidr.is_loopback or cidr.is_link_local or cidr.is_multicast or cidr.is_reserved
                or cidr.subnet_of(_THIS_NETWORK)):
            raise self.fail(f"{where}: vswitch-cidr-block", f"{cidr} is not a unicast network")
        if netmask is not None and netmask != cidr.netmask:
            raise self.fail(f"{where}: netmask",
                            f"{netmask} does not match vswitch-cidr-block {cidr}")
        return cidr

    def check_host_in(self, cidr: IPv4Network, ip: IPv4Address, where: str) -> None:
        if ip not in cidr:
            raise self.fail(where, f"{ip} is outside vswitch-cidr-block {cidr}")
        if ip in (cidr.network_address, cidr.broadcast_address):
            raise self.fail(where, f"{ip} is not a host address of {cidr}")

    def check_unique_ips(self, enis) -> None:
        enis = list(enis)
        owner: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
        for eni in enis:
            for field, ips in (("private-ipv4s", eni.ips), ("ipv6s", eni.ipv6s)):
                for ip in ips:
                    if ip in owner:
                        raise self.fail(f"ENI {eni.mac}: {field}",
                                        f"{ip} is also listed on ENI {owner[ip]}")
                    owner[ip] = eni.mac
        for eni in enis:  # a route via a local address would be refused by the kernel
            for field, gateway in (("gateway", eni.gateway), ("ipv6-gateway", eni.ipv6_gateway)):
                if gateway in owner:
                    raise self.fail(f"ENI {eni.mac}: {field}",
                                    f"{gateway} is an address of ENI {owner[gateway]}")
