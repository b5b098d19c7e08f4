"""No address of another NIC is ever taken.

An ENI whose metadata lists an address that another NIC of the host already
holds (the primary's DHCP address above all), or a delegated prefix holding
such an address, would steal it: the ENI's `from` rule sends that address's
replies out of the ENI and the NIC that owns it stops answering. Whatever
the metadata says, such an ENI is set aside as invalid (left as it is, like
an ENI whose own fields are wrong) and the others are configured.

Pure: the caller says which addresses are held and which links are the ENI's.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from collections.abc import Mapping
from typing import Iterable, NamedTuple, Union

from eni_agent.state import Address, Link, Observed

IP = Union[IPv4Address, IPv6Address]


class Clash(NamedTuple):
    """The first listed address (or delegated prefix) of an ENI that another NIC holds."""

    field: str  # the metadata field: private-ipv4s, ipv6s, ipv4-prefixes, ...
    listed: object  # the address or prefix as listed
    held: IP  # the address another NIC holds (in `listed`, for a prefix)
    holder: str  # who holds it: a link name, or "the primary ENI <mac>"

    def text(self) -> str:
        if self.listed == self.held:
            return f"{self.field}: {self.held} is already an address of {self.holder}"
        return f"{self.field}: {self.listed} holds {self.held}, already an address of {self.holder}"


def listed_sources(eni) -> list[tuple[str, object]]:
    """(field, address or prefix) for everything an ENI would put on its NIC or route."""
    return ([("primary-ip-address" if ip == eni.primary_ip else "private-ipv4s", ip)
             for ip in eni.ips]
            + [("ipv6s", ip) for ip in eni.ipv6s]
            + [("ipv4-prefixes", p) for p in eni.ipv4_prefixes]
            + [("ipv6-prefixes", p) for p in eni.ipv6_prefixes])


def first_clash(eni, held: Mapping[IP, str],
                nics_held: Mapping[IP, str] | None = None) -> Clash | None:
    """The first of the ENI's addresses that is in `held` (address -> who
    holds it), or of its prefixes that holds an address in `nics_held`
    (default: `held`), or None.

    A prefix is delegated so that addresses in it can live anywhere on the
    host (a container's, a NAT's, one on `lo`) while the cloud routes them to
    the ENI; only an address of another NIC (the primary, another ENI), which
    the cloud routes to that NIC, is one the prefix must not hold.
    """
    nics_held = held if nics_held is None else nics_held
    if not held and not nics_held:
        return None
    for field, listed in listed_sources(eni):
        if not hasattr(listed, "prefixlen"):
            if listed in held:
                return Clash(field, listed, listed, held[listed])
            continue
        for ip in sorted((ip for ip in nics_held if ip.version == listed.version
                          and ip in listed), key=int):
            return Clash(field, listed, ip, nics_held[ip])
    return None


def primary_clashes(primary, enis) -> dict[str, str]:
    """MAC -> "ENI <mac> (<id>): <clash>" for each ENI in `enis` (None: an
    invalid one) listing an address, or a prefix holding one, of the primary
    ENI's full metadata entry (`primary`; None: a thin or invalid entry).
    Such an ENI is set aside; the document stands."""
    if primary is None:
        return {}
    held = {ip: f"the primary ENI {primary.mac}" for ip in (*primary.ips, *primary.ipv6s)}
    found = {}
    for eni in enis:
        clash = first_clash(eni, held) if eni and eni.mac != primary.mac else None
        if clash is not None:
            where = f"ENI {eni.mac} ({eni.eni_id})" if eni.eni_id else f"ENI {eni.mac}"
            found[eni.mac] = f"{where}: {clash.text()}"
    return found


def eni_link_indexes(mac: str, links: Iterable[Link]) -> frozenset[int]:
    """The links that are this ENI's own: those carrying its MAC, except child
    links (a macvlan, VLAN or ipvlan on top of it, sharing its MAC)."""
    return frozenset(link.index for link in links
                     if link.mac == mac and not getattr(link, "parent", None))


def held_by_others(addresses: Iterable[Address], own: frozenset[int],
                   names: Mapping[int, str]) -> dict[IP, str]:
    """Each address on a link that is not one of `own`, with the name of its link."""
    return dict(_Held(addresses, names).excluding(own))


class _Held:
    """The host's addresses, indexed once for all ENIs: an ENI's addresses
    are looked up, only its prefixes scan (a host may hold thousands)."""

    def __init__(self, addresses: Iterable[Address], names: Mapping[int, str]):
        self.names = names
        self.by_ip: dict[IP, list[int]] = {}
        for a in addresses:
            if not a.ip.is_link_local:
                self.by_ip.setdefault(a.ip, []).append(a.index)

    def excluding(self, own: frozenset[int]) -> _HeldView:
        return _HeldView(self, own)


class _HeldView(Mapping):
    """address -> the name of a link holding it that is not one of `own`."""

    def __init__(self, held: _Held, own: frozenset[int]):
        self.held, self.own = held, own

    def _holder(self, ip) -> int | None:
        return next((i for i in self.held.by_ip.get(ip, ()) if i not in self.own), None)

    def __getitem__(self, ip) -> str:
        index = self._holder(ip)
        if index is None:
            raise KeyError(ip)
        return self.held.names.get(index, f"link #{index}")

    def __contains__(self, ip) -> bool:
        return self._holder(ip) is not None

    def __iter__(self):
        return (ip for ip in self.held.by_ip if self._holder(ip) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return bool(self.held.by_ip)


def clashing(metadata, observed: Observed, addresses: Iterable[Address]) -> dict[str, str]:
    """MAC -> the one-line message, for each secondary ENI that lists one of
    `addresses` held on a link not its own, or a prefix holding one held on
    the NIC of the primary or of another listed ENI (see `first_clash`)."""
    if metadata is None:
        return {}
    addresses = tuple(addresses)
    names = observed.link_names()
    held = _Held(addresses, names)
    if not held.by_ip:
        return {}
    own: dict[str, set[int]] = {}
    for link in observed.links:
        if not link.parent:
            own.setdefault(link.mac, set()).add(link.index)
    listed = {metadata.primary_mac, *(e.mac for e in metadata.enis),
              *(bad.mac for bad in metadata.invalid)}
    nics = {i for mac, indexes in own.items() if mac in listed for i in indexes}
    nics_held = _Held((a for a in addresses if a.index in nics), names)
    found = {}
    for eni in metadata.secondary_enis:
        if not (eni.ipv4_prefixes or eni.ipv6_prefixes or held.by_ip.keys() & {*eni.ips,
                                                                               *eni.ipv6s}):
            continue  # the common case, decided in C
        mine = frozenset(own.get(eni.mac, ()))
        clash = first_clash(eni, held.excluding(mine), nics_held.excluding(mine))
        if clash is not None:
            found[eni.mac] = clash_message(eni, clash)
    return found


def clash_message(eni, clash: Clash) -> str:
    where = f"ENI {eni.mac} ({eni.eni_id})" if eni.eni_id else f"ENI {eni.mac}"
    return (f"{where}: {clash.text()} (another NIC of this host): not added, "
            "the ENI is left as it is")
