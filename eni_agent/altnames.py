"""The ENI id as an interface altname: `ip addr show eni-bp1...` and
`tcpdump -i eni-bp1...` work on the ENI's NIC (amazon-ec2-net-utils does
the same with its ENI ids).

An altname carries no protocol mark, so what the agent may remove is told by
its name alone: only an `eni-...` name that the metadata gives as the id of
the ENI whose MAC the link carries (or, for `cleanup`, which reads no
metadata, an `eni-...` name on a link carrying the agent's marked state).
Pure: reads the desired ENIs and an `Observed`, never the host.
"""

from __future__ import annotations

import re
from typing import Iterable

from eni_agent.state import AltName, Link, Observed

ALTIFNAMSIZ = 128  # include/uapi/linux/if.h: the name and its terminating NUL
# An ENI id the kernel takes as a name (dev_valid_name: no '/', ':' or
# whitespace) and that says what it is.
_ALTNAME = re.compile(r"eni-[0-9A-Za-z_.-]+")


def altname_of(eni_id: str | None) -> str | None:
    """The altname an ENI id makes, or None when it cannot be one."""
    if eni_id is None or len(eni_id) >= ALTIFNAMSIZ or not _ALTNAME.fullmatch(eni_id):
        return None
    return eni_id


def desired_altnames(eni_ids: dict[str, str | None], configured: Iterable[Link],
                     observed: Observed,
                     left_alone: set[int]) -> tuple[frozenset[AltName], frozenset[AltName]]:
    """(altnames to have, altnames the agent may remove), given each listed
    ENI's id by MAC and the links of the ENIs being configured: a configured
    ENI's NIC has its id as an altname; any other NIC carrying a listed MAC
    (an ignored ENI's) loses it; the links in `left_alone` (ENIs that need an
    operator, or that manage_only leaves to another tool) keep what they have."""
    if not observed.altnames_supported:  # a kernel before 5.5: no altnames to give
        return frozenset(), frozenset()
    configured = set(configured)
    taken = {link.name for link in observed.links} | {a.name for a in observed.altnames}
    wanted, releasable = set(), set()
    for link in observed.links:
        name = altname_of(eni_ids.get(link.mac))
        if name is None or link.index in left_alone:
            continue
        altname = AltName(link.index, name)
        releasable.add(altname)
        # A name another link holds would only fail (EEXIST): skipped.
        if link in configured and (altname in observed.altnames or name not in taken):
            wanted.add(altname)
    return frozenset(wanted), frozenset(releasable)


def cleanup_altnames(observed: Observed) -> frozenset[AltName]:
    """What `cleanup` (no metadata) may remove: ENI-id altnames on the links
    the agent configured (that carry its marked addresses or routes)."""
    configured = {a.index for a in observed.addresses} | {r.oif for r in observed.routes}
    return frozenset(a for a in observed.altnames
                     if a.index in configured and altname_of(a.name) is not None)
