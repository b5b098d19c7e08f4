"""Which netlink notifications matter to the daemon, and which NICs are new.

Pure: `EventFilter.sort(events)` says why a reconcile is needed (if it is)
and which NICs the metadata does not know appeared or went away; the filter
learns what the agent manages from each report (`remember`).
"""

from __future__ import annotations

from typing import NamedTuple

from eni_agent.config import Config
from eni_agent.desired import ignored_nic
from eni_agent.followed import foreign_address_reason
from eni_agent.model import Metadata
from eni_agent.netlink import Event, Kind, link_state
from eni_agent.report import Report

ECS_OUI = "00:16:3e"  # Alibaba Cloud's prefix: every ECS NIC's MAC starts with it
# Why a notification of each kind makes a pass (the text of the log lines).
REASON = {Kind.LINKS: "link event", Kind.ADDRESSES: "address event",
          Kind.ROUTES: "route event", Kind.RULES: "rule event"}
# Reasons that mean someone undid the agent's work (as opposed to a hotplug, a
# detach or new metadata, which legitimately change things in bursts).
DRIFT_REASONS = frozenset({REASON[Kind.ADDRESSES], REASON[Kind.ROUTES], REASON[Kind.RULES]})
LOST = "netlink events lost"  # the socket overflowed: anything may have changed


class Sorted(NamedTuple):
    reasons: frozenset[str]  # why to reconcile; empty: nothing of the agent's changed
    appeared: tuple[Event, ...]  # link events of NICs the metadata does not know
    gone: tuple[str, ...]  # MACs of such NICs that went away


def may_be_an_eni(event: Event, config: Config, on_ecs: bool,
                  virtual_links_too: bool = False) -> bool:
    """Whether a NIC the metadata does not list may be an ENI (attached or
    moved here, which the service lists now or soon): a link with a device
    behind it (a NIC has no netlink link kind; veth, macvlan, bridge, tun,
    vlan, bond have one), with a MAC of the cloud's (on ECS, Alibaba's
    00:16:3e; elsewhere globally administered), not ignored by the config.
    `virtual_links_too` (the config's `burst_for_virtual_links`, for test
    topologies whose NICs are veths) lets kinds pass."""
    mac = event.mac or ""
    if event.link_kind is not None and not virtual_links_too:
        return False
    try:
        first = int(mac.split(":")[0], 16)
    except ValueError:
        return False
    if first & 0x03 or (on_ecs and not mac.startswith(ECS_OUI)):
        return False
    return not ignored_nic(mac, event.state[0] if event.state else None, config)


class EventFilter:
    def __init__(self, protocol: int):
        self.protocol = protocol
        self.own_port = 0  # the daemon's own netlink session: its echoes are not news
        # Linux >= 5.18 keeps address marks: an unmarked address is someone
        # else's (to follow), not the agent's own undone (drift).
        self.kernel_marks_addresses = True
        self.eni_macs: frozenset[str] = frozenset()
        self.managed_indexes: frozenset[int] = frozenset()
        self.managed_tables: frozenset[int] = frozenset()
        # What each link looked like at the last observation or event since: a
        # notification repeating it (IPv6 DAD finishing, carrier, statistics)
        # changes nothing the plan reads.
        self.link_states: dict[int, tuple] = {}

    def know(self, metadata: Metadata | None) -> None:
        """The metadata in use: its ENIs' links matter."""
        self.eni_macs = frozenset(eni.mac for eni in metadata.secondary_enis) \
            if metadata else frozenset()

    def remember(self, report: Report) -> None:
        """What the last pass observed and manages."""
        self.link_states = {link.index: link_state(link) for link in report.links}
        self.managed_indexes = frozenset(eni.ifindex for eni in report.enis
                                         if eni.ifindex is not None)
        self.managed_tables = frozenset(eni.table for eni in report.enis
                                        if eni.table is not None)

    def forget_links(self) -> None:
        """Notifications were lost or the socket reopened: every link is news."""
        self.link_states.clear()

    def attached_macs(self) -> frozenset[str]:
        return frozenset(state[1] for state in self.link_states.values())

    def sort(self, events: list[Event]) -> Sorted:
        reasons: set[str] = set()
        appeared: list[Event] = []
        gone: list[str] = []
        for event in events:
            reason = self.reason(event)
            if reason:
                reasons.add(reason)
            elif event.kind is Kind.LINKS and event.mac and event.mac not in self.eni_macs \
                    and event.index not in self.managed_indexes:
                if event.state is None:
                    gone.append(event.mac)
                else:
                    appeared.append(event)
        return Sorted(frozenset(reasons), tuple(appeared), tuple(gone))

    def reason(self, event: Event) -> str | None:
        """Why this event matters, or None if it concerns nothing of the agent's."""
        if event.kind == "overflow":
            self.forget_links()
            return LOST
        if event.port and event.port == self.own_port:
            # The echo of this daemon's own change: the pass that made it
            # verified it by observing the kernel afterwards.
            return None
        if event.kind is Kind.LINKS:
            if event.mac in self.eni_macs or event.index in self.managed_indexes:
                if event.state is not None and self.link_states.get(event.index) == event.state:
                    return None
                if event.state is None:
                    self.link_states.pop(event.index, None)
                else:
                    self.link_states[event.index] = event.state
                return REASON[Kind.LINKS]
            return None
        if event.protocol == self.protocol:
            return REASON[event.kind]
        if event.kind is Kind.ADDRESSES and event.index in self.managed_indexes \
                and not event.link_scope:  # fe80::: the kernel's, never planned
            return foreign_address_reason(self.kernel_marks_addresses)
        if event.table is not None and event.table in self.managed_tables:
            return REASON[event.kind]
        return None
