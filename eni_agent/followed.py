"""Addresses others put on a managed ENI (keepalived's VIP on a HaVip,
Pacemaker, an operator's `ip addr add`), followed with a rule.

An address on an ENI's link that the agent did not add, inside the ENI's
vswitch (IPv6: its IPv6 vswitch), gets `from <address> lookup <ENI table>`
at the agent's rule priority, marked like the agent's own rules: its replies
leave through the ENI, as the VPC's source check wants. The address itself
is never touched. The rule is desired only while the address is there, so it
goes when the address goes (and with `cleanup`, like every marked rule).

Not followed, and said why in `status`: an address outside the vswitch (the
VPC would drop what it sends through the ENI), link-local ones (the
kernel's), one another link of the host holds too (routing it through this
ENI would take the other NIC's replies), and any on a kernel that drops
address marks (before 5.18: see `follow`).
"""

from __future__ import annotations

from typing import NamedTuple

from eni_agent.config import Config
from eni_agent.model import Eni
from eni_agent.state import Address, Link, Observed, Rule


class Following(NamedTuple):
    followed: frozenset[Address] = frozenset()
    # (address, why not followed), for `status`
    unfollowed: tuple[tuple[Address, str], ...] = ()


def follow(eni: Eni, link: Link, observed: Observed, config: Config) -> Following:
    """Which foreign addresses on this ENI's link to route through it."""
    if not config.follow_addresses:
        return Following()
    own = set(eni.ips) | set(eni.ipv6s)
    prefixes = eni.ipv4_prefixes + eni.ipv6_prefixes
    candidates = sorted(a for a in observed.foreign_addresses if a.index == link.index
                        and not a.ip.is_link_local  # the kernel's
                        and a.ip not in own and not any(a.ip in p for p in prefixes))
    if not candidates:  # routed already as the ENI's own, or nothing there
        return Following()
    if not observed.address_marks:
        # Before Linux 5.18 the agent knows its own addresses by their rule
        # (ownership.py): a followed address would pass for the agent's and
        # be removed when the metadata does not list it.
        return Following(unfollowed=tuple(
            (a, "this kernel keeps no address marks (Linux < 5.18), so eni-agent could not "
                "tell it from its own") for a in candidates))
    elsewhere = {a.ip for a in observed.addresses | observed.foreign_addresses
                 if a.index != link.index}
    followed, unfollowed = set(), []
    for a in candidates:
        vswitch = eni.cidr if a.version == 4 else eni.ipv6_cidr
        if a.ip in elsewhere:
            unfollowed.append((a, "another link holds it too"))
        elif vswitch is None or a.ip not in vswitch:
            where = f"the vswitch {vswitch}" if vswitch else "an IPv6 vswitch (the ENI has none)"
            unfollowed.append((a, f"outside {where}"))
        else:
            followed.add(a)
    return Following(frozenset(followed), tuple(unfollowed))


def followed_rules(following: Following, table: int, config: Config) -> set[Rule]:
    return {Rule(config.rule_priority, a.ip, table) for a in following.followed}


def addressless_rules(kept: frozenset, observed: Observed) -> frozenset[Rule]:
    """Host rules among `kept` (what the agent owns on an ENI it leaves as it
    is: set down, ambiguous...) whose address is on no link any more: a
    followed address that went (keepalived gives its VIP up when the ENI goes
    down). Routing from an address the host does not hold serves nothing,
    and the peer that holds it now needs the replies."""
    if not kept:
        return frozenset()
    held = {a.ip for a in observed.addresses | observed.foreign_addresses}
    return frozenset(r for r in kept if isinstance(r, Rule) and r.suppress_prefixlength is None
                     and r.src.prefixlen == r.src.max_prefixlen
                     and r.src.network_address not in held)


FOREIGN_ADDRESS_EVENT = "foreign address event"


def foreign_address_reason(kernel_marks_addresses: bool) -> str:
    """The daemon's reason for reconciling after an unmarked address came or
    went on a managed ENI: someone's address to follow, not drift to repair,
    so following a VIP that moves often never looks like a fight with another
    tool. Where the kernel drops address marks (before Linux 5.18), it may be
    the agent's own address undone: drift."""
    return FOREIGN_ADDRESS_EVENT if kernel_marks_addresses else "address event"


def unfollowed_warnings(following: Following, link_name: str) -> list[str]:
    return [f"{link_name} also holds {a.ip}/{a.prefixlen}, added by another tool: not routed "
            f"through the ENI ({why}; the VPC would drop its replies)"
            for a, why in following.unfollowed]
