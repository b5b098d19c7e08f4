"""What the metadata says: the ECS metadata tree, parsed and validated.

The document is the JSON form of the ECS metadata tree (`mac` at the top,
`network.interfaces.macs.<mac>.<field>` per ENI), so one parser serves a file
and the live service. Nothing here touches the host: constructing a `Metadata`
never looks at a kernel link.

The schema is pydantic: `EniFields` declares one ENI's entry (each field's
type and form, the service's text forms of lists included, and the rules
between its fields), `MetadataDocument` the document around it (the primary
MAC, the MAC table, the rules between ENIs). The field types, which parse
the service's forms, are in `metadata_fields`; `validation.describe` turns a
pydantic error into the one line users see, naming the ENI and the field; `Eni` and
`Metadata` are the normalised values the rest of the agent works with
(hashable, compared with ==).

Three outcomes: a `Metadata`; a `Metadata` with some ENIs set aside in
`invalid` (an ENI whose own fields are wrong, each with its one-line
message: left as it is, while the others are configured); or `InvalidInput`
for what is wrong with the document as a whole or between ENIs.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Annotated, Any, Dict, NamedTuple, Optional

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr,
                      ValidationError, ValidationInfo, model_validator)
from pydantic_core import PydanticCustomError

from eni_agent.errors import InvalidInput, one_line
from eni_agent.metadata_fields import (IPv4List, IPv4Prefixes, IPv6List, IPv6Prefixes,
                                       OptionalIPv4, blank_is_none, normalize_mac,
                                       null_is_none, parse_eni_id, parse_ipv6,
                                       parse_vswitch_cidr, parse_vswitch_cidr6, vswitch_problem)
from eni_agent.taken import primary_clashes
from eni_agent.validation import describe, invalid, json_type, show

MAX_DOCUMENT_BYTES = 1 << 20


# -- the values -------------------------------------------------------------------------

class Eni(NamedTuple):
    """One attached ENI, normalised: lower-case MAC, primary IP first.

    Built only from a validated `EniFields`.
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
    # Prefixes delegated to the ENI (ipv4-prefixes, ipv6-prefixes), inside its
    # vswitch CIDR of their family; an IPv6 prefix needs the IPv6 CIDR and gateway.
    ipv4_prefixes: tuple[IPv4Network, ...] = ()
    ipv6_prefixes: tuple[IPv6Network, ...] = ()

    @property
    def name(self) -> str:
        """How messages refer to this ENI: its id when known, else its MAC."""
        return f"{self.eni_id} ({self.mac})" if self.eni_id else self.mac


class InvalidEni(NamedTuple):
    """A listed ENI whose own fields are invalid: left exactly as it is."""

    mac: str
    eni_id: str | None
    message: str  # one line, as `InvalidInput` would say it


class Metadata(NamedTuple):
    primary_mac: str
    # Every listed, valid ENI, sorted by MAC; the primary too when its entry
    # is complete (only its MAC is needed: a thin or invalid entry is left out).
    enis: tuple[Eni, ...]
    invalid: tuple[InvalidEni, ...] = ()  # secondary ENIs refused on their own, by MAC

    @property
    def secondary_enis(self) -> tuple[Eni, ...]:
        return tuple(eni for eni in self.enis if eni.mac != self.primary_mac)

    @property
    def listed_macs(self) -> frozenset[str]:
        """Every MAC the metadata knows: the primary's, and each ENI's, valid or not
        (a NIC with another MAC is one the metadata does not describe yet)."""
        return frozenset({self.primary_mac, *(eni.mac for eni in self.enis),
                          *(bad.mac for bad in self.invalid)})


# -- entry points -----------------------------------------------------------------------

def parse_metadata(data: bytes | str, source: str = "metadata") -> Metadata:
    """Parse and validate a metadata document (ENIs whose own fields are invalid
    set aside in `.invalid`), or raise `InvalidInput`."""
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
        raise InvalidInput(f"invalid metadata {source}: duplicate key {show(e.args[0])} in a JSON object") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, huge ints
        raise InvalidInput(f"invalid metadata {source}: not valid JSON: {one_line(e)}") from None
    return metadata_from_tree(doc, source)


def metadata_from_tree(doc: object, source: str = "metadata") -> Metadata:
    """Validate an already-decoded metadata tree (a file's JSON, or the service's)."""
    try:
        document = MetadataDocument.model_validate(doc, context={"source": source})
    except ValidationError as e:
        raise InvalidInput(f"invalid metadata {source}: {describe(e).text}") from None
    return document.metadata()


class _DuplicateKey(Exception):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


# -- the schema ---------------------------------------------------------------------------

class EniFields(BaseModel):
    """One ENI's entry under `network.interfaces.macs`, named as the service
    names its fields. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    network_interface_id: Annotated[Optional[str], BeforeValidator(parse_eni_id)] = Field(
        None, alias="network-interface-id")
    primary_ip_address: OptionalIPv4 = Field(None, alias="primary-ip-address")
    private_ipv4s: IPv4List = Field((), alias="private-ipv4s")
    netmask: OptionalIPv4 = None
    vswitch_cidr_block: Annotated[Optional[IPv4Network], BeforeValidator(
        null_is_none(parse_vswitch_cidr))] = Field(None, alias="vswitch-cidr-block")
    gateway: OptionalIPv4 = None
    ipv6s: IPv6List = ()
    vswitch_ipv6_cidr_block: Annotated[Optional[IPv6Network], BeforeValidator(
        blank_is_none(parse_vswitch_cidr6))] = Field(None, alias="vswitch-ipv6-cidr-block")
    ipv6_gateway: Annotated[Optional[IPv6Address], BeforeValidator(blank_is_none(parse_ipv6))] = \
        Field(None, alias="ipv6-gateway")
    ipv4_prefixes: IPv4Prefixes = Field((), alias="ipv4-prefixes")
    ipv6_prefixes: IPv6Prefixes = Field((), alias="ipv6-prefixes")

    _eni: Optional[Eni] = PrivateAttr(None)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> EniFields:
        """The rules between an ENI's fields; `_eni` is the normalised ENI."""
        primary, private = self.primary_ip_address, self.private_ipv4s
        ips = tuple(dict.fromkeys(((primary,) if primary else ()) + private))
        cidr = self.vswitch_cidr_block
        if cidr is None:
            if self.netmask is None or not ips:
                raise invalid("missing", "vswitch-cidr-block")
            try:
                cidr = IPv4Network(f"{ips[0]}/{self.netmask}", strict=False)
            except ValueError:
                raise invalid(f"not a netmask: {self.netmask}", "netmask") from None
            problem = vswitch_problem(cidr)
            if problem:
                raise invalid(problem, "vswitch-cidr-block")
        elif self.netmask is not None and self.netmask != cidr.netmask:
            raise invalid(f"{self.netmask} does not match vswitch-cidr-block {cidr}", "netmask")
        gateway = self.gateway
        if gateway is None:
            raise invalid("missing", "gateway")
        if not ips:
            raise invalid("no IP address (neither primary-ip-address nor private-ipv4s)")
        located = ([("primary-ip-address", primary)] if primary else []) + [
            (f"private-ipv4s[{i}]", ip) for i, ip in enumerate(private)] + [("gateway", gateway)]
        for where, ip in located:
            if ip not in cidr:
                raise invalid(f"{ip} is outside vswitch-cidr-block {cidr}", where)
            if ip in (cidr.network_address, cidr.broadcast_address):
                raise invalid(f"{ip} is not a host address of {cidr}", where)
        if gateway in ips:
            raise invalid(f"{gateway} is also an address of the ENI", "gateway")
        for i, prefix in enumerate(self.ipv4_prefixes):
            if not prefix.subnet_of(cidr):
                raise invalid(f"{prefix} is outside vswitch-cidr-block {cidr}",
                              f"ipv4-prefixes[{i}]")
        ipv6s, ipv6_cidr, ipv6_gateway = self._ipv6_or_none()
        for i, prefix in enumerate(self.ipv6_prefixes):
            if not prefix.subnet_of(ipv6_cidr):
                raise invalid(f"{prefix} is outside vswitch-ipv6-cidr-block {ipv6_cidr}",
                              f"ipv6-prefixes[{i}]")
        self._eni = Eni(mac=(info.context or {}).get("mac", ""), eni_id=self.network_interface_id,
                        primary_ip=ips[0], ips=ips, cidr=cidr, gateway=gateway, ipv6s=ipv6s,
                        ipv6_cidr=ipv6_cidr, ipv6_gateway=ipv6_gateway,
                        ipv4_prefixes=tuple(dict.fromkeys(self.ipv4_prefixes)),
                        ipv6_prefixes=tuple(dict.fromkeys(self.ipv6_prefixes)))
        return self

    def _ipv6_or_none(self) -> tuple[tuple[IPv6Address, ...], IPv6Network | None,
                                     IPv6Address | None]:
        """(ipv6s, vswitch IPv6 CIDR, IPv6 gateway): all three, or none.

        An ENI in an IPv6-enabled vswitch but with no IPv6 address assigned is
        served with the CIDR and gateway and no `ipv6s`: that ENI is IPv4-only
        (unless IPv6 prefixes are delegated to it: then the CIDR and gateway
        are its). Addresses or prefixes without a CIDR or gateway, or just one
        of the CIDR and the gateway, cannot be configured: the ENI is refused.
        """
        ips, cidr, gateway = self.ipv6s, self.vswitch_ipv6_cidr_block, self.ipv6_gateway
        if self.ipv6_prefixes and not ips:
            ips_or_prefixes, name = self.ipv6_prefixes, "ipv6-prefixes"
        else:
            ips_or_prefixes, name = ips, "ipv6s"
        present = {name: bool(ips_or_prefixes), "vswitch-ipv6-cidr-block": cidr is not None,
                   "ipv6-gateway": gateway is not None}
        missing = [field for field, there in present.items() if not there]
        if len(missing) == 3 or (not ips_or_prefixes and not missing[1:]):
            return (), None, None
        if missing:
            raise invalid("missing while other IPv6 fields are set (give ipv6s, "
                          "vswitch-ipv6-cidr-block and ipv6-gateway together)",
                          [field for field in missing if field != name or ips_or_prefixes][0])
        for i, ip in enumerate(ips):
            if ip not in cidr:
                raise invalid(f"{ip} is outside vswitch-ipv6-cidr-block {cidr}", f"ipv6s[{i}]")
            if ip == cidr.network_address:
                raise invalid(f"{ip} is the subnet-router anycast address", f"ipv6s[{i}]")
        if gateway not in cidr and not gateway.is_link_local:
            raise invalid(f"{gateway} is neither in {cidr} nor link-local", "ipv6-gateway")
        if gateway in ips:
            raise invalid(f"{gateway} is also an address of the ENI", "ipv6-gateway")
        return tuple(dict.fromkeys(ips)), cidr, gateway


def _object_or_empty(value: object) -> object:
    """A node of the tree that is not an object holds none of the keys below it."""
    return value if isinstance(value, dict) else {}


class _Interfaces(BaseModel):
    macs: Dict[str, Any]


class _Network(BaseModel):
    interfaces: Annotated[_Interfaces, BeforeValidator(_object_or_empty)]


def _primary_mac(value: object) -> str:
    mac = normalize_mac(value)
    if mac is None:
        raise invalid(f"not a MAC address: {show(value)}")
    return mac


class MetadataDocument(BaseModel):
    """The metadata tree: the primary NIC's MAC, and one entry per ENI under
    `network.interfaces.macs` (keys are MACs). Unknown fields are ignored."""

    mac: Annotated[str, BeforeValidator(_primary_mac)]
    network: Annotated[_Network, BeforeValidator(_object_or_empty)]

    _metadata: Optional[Metadata] = PrivateAttr(None)

    @model_validator(mode="after")
    def _enis(self, info: ValidationInfo) -> MetadataDocument:
        """Each ENI valid or set aside on its own, and the rules between ENIs.

        An ENI whose own fields are invalid is set aside (`Metadata.invalid`)
        and the others stand; what is wrong with the document as a whole or
        between ENIs refuses it all. From the primary's entry only its MAC is
        needed: a thin or invalid entry is simply not an ENI to know about.
        """
        source = (info.context or {}).get("source", "metadata")
        enis: dict[str, Eni | None] = {}
        refused: list[InvalidEni] = []
        for raw_mac, fields in self.network.interfaces.macs.items():
            mac = normalize_mac(raw_mac)
            if mac is None:
                raise invalid("key is not a MAC address", f"ENI {show(raw_mac)}")
            if mac in enis:
                raise invalid("listed twice (MACs match case-insensitively)", f"ENI {mac}")
            if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
                raise invalid("not a unicast MAC address", f"ENI {mac}")
            eni = enis[mac] = _eni(mac, fields, source)
            if isinstance(eni, InvalidEni):
                enis[mac] = None
                if mac != self.mac:
                    refused.append(eni)
        for mac, text in primary_clashes(enis.get(self.mac), enis.values()).items():
            refused.append(InvalidEni(mac, enis.pop(mac).eni_id,
                                      f"invalid metadata {source}: {text}"))
        valid = [eni for eni in enis.values() if eni is not None]
        _check_unique_addresses(valid)
        self._metadata = Metadata(primary_mac=self.mac,
                                  enis=tuple(sorted(valid, key=lambda eni: eni.mac)),
                                  invalid=tuple(sorted(refused)))
        return self

    def metadata(self) -> Metadata:
        assert self._metadata is not None
        return self._metadata


def _eni(mac: str, fields: object, source: str) -> Eni | InvalidEni:
    """One ENI, or why not: naming it (by MAC and, when valid, its id) and the field."""
    if not isinstance(fields, dict):
        return InvalidEni(mac, None, f"invalid metadata {source}: ENI {mac}: must be an object, "
                                     f"got {json_type(fields)}")
    try:
        return EniFields.model_validate(fields, context={"mac": mac})._eni
    except ValidationError as e:
        problem = describe(e)
    try:
        eni_id = parse_eni_id(fields.get("network-interface-id"))
    except PydanticCustomError:
        eni_id = None
    where = f"ENI {mac} ({eni_id})" if eni_id else f"ENI {mac}"
    return InvalidEni(mac, eni_id, f"invalid metadata {source}: {where}: {problem.text}")


def _check_unique_addresses(enis) -> None:
    enis = list(enis)
    owner: dict[IPv4Address | IPv6Address, str] = {}
    for eni in enis:
        for field, ips in (("private-ipv4s", eni.ips), ("ipv6s", eni.ipv6s)):
            for ip in ips:
                if ip in owner:
                    raise invalid(f"{ip} is also listed on ENI {owner[ip]}",
                                  f"ENI {eni.mac}: {field}")
                owner[ip] = eni.mac
    for eni in enis:  # a route via a local address would be refused by the kernel
        for field, gateway in (("gateway", eni.gateway), ("ipv6-gateway", eni.ipv6_gateway)):
            if gateway in owner:
                raise invalid(f"{gateway} is an address of ENI {owner[gateway]}",
                              f"ENI {eni.mac}: {field}")
    # A delegated prefix routes all its addresses through its ENI: it cannot
    # hold another ENI's address, nor overlap another ENI's prefix.
    delegated = [(eni.mac, field, i, prefix) for eni in enis
                 for field, prefixes in (("ipv4-prefixes", eni.ipv4_prefixes),
                                         ("ipv6-prefixes", eni.ipv6_prefixes))
                 for i, prefix in enumerate(prefixes)]
    for mac, field, i, prefix in delegated:
        for ip, other in owner.items():
            if other != mac and ip in prefix:
                raise invalid(f"{prefix} holds {ip}, an address of ENI {other}",
                              f"ENI {mac}: {field}[{i}]")
        for other, _, _, theirs in delegated:
            if other != mac and prefix.version == theirs.version and prefix.overlaps(theirs):
                raise invalid(f"{prefix} overlaps {theirs}, delegated to ENI {other}",
                              f"ENI {mac}: {field}[{i}]")
