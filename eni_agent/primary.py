"""The primary ENI's secondary private IPs, on the primary NIC.

ECS assigns them with AssignPrivateIpAddresses (and AssignIpv6Addresses) and
the metadata lists them in the primary's `private-ipv4s` and `ipv6s`; the
image's DHCP client configures only the primary IP. Each is added to the
primary NIC with `noprefixroute`, marked like every address of the agent's.
Nothing else on the primary changes: its DHCP address, its routes and main's
default route are the image's, and its source for new connections stays the
image's (an IPv4 secondary is the kernel's "secondary"; an IPv6 one is added
with preferred_lft 0, as IPv6 would otherwise prefer the newest). No policy
rule is needed: the addresses are the primary NIC's, and main's default
route already leaves through it.

Pure: what should be there, given the metadata and an `Observed` snapshot.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

from eni_agent.config import Config
from eni_agent.state import Address, Link, Observed
from eni_agent.taken import eni_link_indexes, first_clash, held_by_others


class PrimarySecondaries(NamedTuple):
    mac: str | None = None
    link: Link | None = None
    listed: tuple = ()  # the secondary IPs the metadata lists (those the image holds too)
    addresses: frozenset[Address] = frozenset()  # to hold
    kept: frozenset[Address] = frozenset()  # the agent's, left exactly as they are
    error: str = ""  # why they are left as they are (another NIC holds one)
    eni_id: str | None = None  # from a full entry
    warning: str = ""  # why they are not managed at all


def primary_secondaries(metadata, observed: Observed, config: Config,
                        kept_elsewhere: Iterable[Address] = ()) -> PrimarySecondaries:
    """What the agent should hold on the primary NIC.

    `metadata=None` (cleanup) or `primary_secondary_ips = false`: nothing (the
    agent's go). A thin or invalid primary entry, or no single primary NIC:
    the agent's are kept as they are (a thin entry does not say "none").
    `kept_elsewhere`: the agent's addresses staying on other links.
    """
    if metadata is None:
        return PrimarySecondaries()
    mac = metadata.primary_mac
    own = eni_link_indexes(mac, observed.links)
    owned = frozenset(a for a in observed.addresses if a.index in own)
    links = [link for link in observed.links if link.index in own and link.master is None]
    if not config.primary_secondary_ips:
        return PrimarySecondaries(mac)
    entry = next((eni for eni in metadata.enis if eni.mac == mac), None)
    if entry is None or len(links) != 1:
        return PrimarySecondaries(mac, links[0] if len(links) == 1 else None, kept=owned)
    link = links[0]
    listed = tuple(ip for ip in entry.ips if ip != entry.primary_ip) + tuple(entry.ipv6s)
    if not observed.address_marks and listed:
        # An ENI's address is known as the agent's by its rule (ownership.py);
        # these get none, so the agent could never tell them from the image's.
        return PrimarySecondaries(mac, link, listed, eni_id=entry.eni_id, warning=(
            "this kernel does not keep address marks (Linux < 5.18): eni-agent could not tell "
            "the primary's secondary IPs from the image's afterwards, so it does not add them; "
            "configure them in the image's network configuration"))
    held = held_by_others((*observed.foreign_addresses, *kept_elsewhere), own,
                          observed.link_names())
    clash = first_clash(entry._replace(ipv4_prefixes=(), ipv6_prefixes=()),
                        {ip: who for ip, who in held.items() if ip != entry.primary_ip})
    if clash is not None:
        return PrimarySecondaries(mac, link, listed, kept=owned, eni_id=entry.eni_id, error=(
            f"primary ENI {entry.name}: {clash.text()} (another NIC of this host): its "
            "secondary IPs are not added, and those eni-agent added are left as they are"))
    images = {a.ip for a in observed.foreign_addresses if a.index == link.index}
    lengths = {4: entry.cidr.prefixlen,
               6: entry.ipv6_cidr.prefixlen if entry.ipv6_cidr else 128}
    return PrimarySecondaries(mac, link, listed, eni_id=entry.eni_id, addresses=frozenset(
        Address(link.index, ip, lengths[ip.version], deprecated=ip.version == 6)
        for ip in listed if ip not in images))
