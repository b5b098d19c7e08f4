"""What became of each change sent to the kernel: netlink error codes turned
into meanings, in one place.

"Already there" is EEXIST for every add; "already gone" differs by object:
ESRCH for routes, ENOENT for rules, EADDRNOTAVAIL for addresses; ENODEV means
the link itself is gone (an ENI detached under our feet).
"""

from __future__ import annotations

import enum
import errno
import os
from typing import FrozenSet, List, NamedTuple, Optional

from eni_agent.errors import PermissionDenied
from eni_agent.plan import Action, Change, Outcome
from eni_agent.state import Address, AltName, Link, Route, Rule


class Result(NamedTuple):
    change: Change
    outcome: Outcome
    error: str = ""


_ABSENT = {Address: errno.EADDRNOTAVAIL, Route: errno.ESRCH, Rule: errno.ENOENT,
           AltName: errno.ENOENT}


def classify(change: Change, code: int) -> Result:
    """The meaning of a netlink error code (0: success) for this change."""
    if code == 0:
        return Result(change, Outcome.DONE)
    if code == errno.EPERM:
        raise PermissionDenied("permission denied changing the network: run as root "
                               "(CAP_NET_ADMIN)")
    if code == errno.ENODEV:
        return Result(change, Outcome.LINK_GONE)
    if change.action is Action.REMOVE and code == _ABSENT.get(type(change.target)):
        return Result(change, Outcome.ALREADY)
    if change.action is Action.ADD and code == errno.EEXIST:
        return Result(change, Outcome.ALREADY)
    return Result(change, Outcome.FAILED, strerror(code))


def strerror(code: int) -> str:
    return f"{errno.errorcode.get(code, code)}: {os.strerror(code)}"


def skip_gone_links(results: List[Result]) -> List[Result]:
    """Once a link is found gone, later changes on it report LINK_GONE (the
    kernel said ENODEV or 'no such route' for each; one meaning is clearer)."""
    gone: set = set()
    out = []
    for result in results:
        index = result.change.ifindex
        if index in gone and result.outcome is not Outcome.DONE:
            result = Result(result.change, Outcome.LINK_GONE)
        elif result.outcome is Outcome.LINK_GONE and index is not None:
            gone.add(index)
        out.append(result)
    return out


class Kind(str, enum.Enum):
    """The kinds of kernel object the agent reads, spelled one way everywhere
    (records, notifications, events). Equal to, and hashed as, its text."""

    LINKS = "links"
    ADDRESSES = "addresses"
    ROUTES = "routes"
    RULES = "rules"

    def __str__(self) -> str:
        return self.value

    __hash__ = str.__hash__


KINDS = frozenset(Kind)


def touched_kinds(results: List[Result]) -> Optional[FrozenSet[str]]:
    """What applying these results may have changed in the kernel; None: anything.

    Addresses and links also touch routes: the kernel drops IPv4 routes through
    a link that goes down or loses its last address, and says nothing.
    """
    kinds = set()
    for result in results:
        if result.outcome is Outcome.LINK_GONE:
            return None
        target = result.change.target
        kinds.add("links" if isinstance(target, (Link, AltName)) else "addresses" if isinstance(
            target, Address) else "routes" if isinstance(target, Route) else "rules")
    if kinds & {"links", "addresses"}:
        kinds.add("routes")
    return frozenset(kinds)
