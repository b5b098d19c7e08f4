"""Reconcile: observe -> desired -> plan -> apply -> verify (observe again).

Shared by `sync`, `status`, `cleanup` and the daemon. The netlink adapter is
passed in, so this module never imports pyroute2 itself.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from eni_agent.config import Config
from eni_agent.desired import (Desired, DesiredEni, Match, desired_state, host_warnings,
                               ignored_on_host)
from eni_agent.followed import unfollowed_warnings
from eni_agent.main_routes import candidate_destinations
from eni_agent.model import InvalidEni, Metadata
from eni_agent.plan import Change, Outcome, plan
from eni_agent.primary import primary_secondaries
from eni_agent.report import SETTLED, EniReport, EniState, Report, invalid_enis
from eni_agent.state import MAIN_TABLE, Address, Observed, Rule
from eni_agent.taken import clashing
from eni_agent.tuning import QueueOutcome, queue_outcomes
from eni_agent.verify import findings

if TYPE_CHECKING:
    from eni_agent.netlink import Netlink, Result

__all__ = ["Report", "preview", "reconcile", "waiting_for_udev"]  # Report: the daemon's import

VERIFY_ROUNDS = 3  # apply, observe, re-plan: at most this many times
# After changes, the kernel adds an IPv6 address's local route from a work
# queue: a missing one is asked about again, this often, for this long.
LOCAL_ROUTE_PAUSE, LOCAL_ROUTE_WAIT = 0.02, 0.5


def reconcile(nl: Netlink, metadata: Metadata | None, config: Config, *, command: str = "sync",
              udev_wait: float = 0.0) -> Report:
    """Make the kernel match the metadata; `metadata=None` removes all owned state.

    `udev_wait`: for up to this long, wait for udev to finish with new NICs
    before planning (a one-shot run at boot races udev's coldplug).
    """
    observed, desired = _settled(nl, metadata, config, udev_wait)
    changes = plan(desired, observed)
    results: list[Result] = []
    for _ in range(VERIFY_ROUNDS):
        if not changes:
            break
        results.extend(nl.apply(changes))
        observed = _observe(nl, metadata, config)
        desired = _desired(metadata, observed, config)
        changes = plan(desired, observed)
    report = _report(command, metadata, config, desired, observed, results, remaining=changes,
                     queues=queue_outcomes(desired, config, apply=True))
    if metadata is not None:
        _ask_the_kernel(nl, report, desired, observed, config,
                        wait=LOCAL_ROUTE_WAIT if results else 0.0)
    _warn_about_others(report, desired, observed)
    return report


def preview(nl: Netlink, metadata: Metadata | None, config: Config, *, command: str = "status",
            udev_wait: float = 0.0) -> Report:
    """Observe and plan, change nothing: `status`, and `--dry-run` of `sync`
    and `cleanup` (any other `command`).

    Both list the plan per ENI. `status` asks "is the kernel in sync now?"
    (pending changes make it not), and warns about other tools working the
    ENIs; a dry run asks "would `command` converge?" (only ENIs needing an
    operator make it not).
    """
    observed, desired = _settled(nl, metadata, config, udev_wait)
    changes = plan(desired, observed)
    is_status = command == "status"
    report = _report(command, metadata, config, desired, observed, results=[], remaining=changes,
                     applied=False, queues=queue_outcomes(desired, config, apply=False),
                     unapplied_state=EniState.OUT_OF_SYNC if is_status else EniState.WOULD_CHANGE)
    if not is_status:
        report.dry_run = True
        return report
    report.converged = report.converged and not any(e.changes for e in report.entries) \
        and not report.other_changes and not report.host_changes
    if metadata is not None:
        _ask_the_kernel(nl, report, desired, observed, config)
    _warn_about_others(report, desired, observed)
    return report


def _ask_the_kernel(nl: Netlink, report: Report, desired: Desired, observed: Observed,
                    config: Config, wait: float = 0.0) -> None:
    """The verification that the ENIs in place work (`eni_agent.verify`):
    what defeats one is an error of it, which fails it (exit 3)."""
    settled = {e.mac for e in report.enis if e.state in SETTLED}
    if not settled:
        return
    found = findings(nl, desired, observed, config, settled)
    deadline = time.monotonic() + wait
    while found and time.monotonic() < deadline:
        time.sleep(LOCAL_ROUTE_PAUSE)
        nl.forget_answers()
        found = findings(nl, desired, observed, config, settled)
    for entry in report.enis:
        if entry.mac in found:
            entry.errors.extend(found[entry.mac])
            entry.state = EniState.FAILED
            report.converged = False


def _warn_about_others(report: Report, desired: Desired, observed: Observed) -> None:
    """Each ENI's warnings about another tool (a DHCP client, a network
    manager) also working its NIC: `status` and `sync` print them, the daemon
    logs each once."""
    reports = {e.mac: e for e in report.enis}
    for d in desired.enis:
        reports[d.eni.mac].warnings.extend(_coexistence_warnings(d, observed))


def _settled(nl: Netlink, metadata: Metadata | None, config: Config,
             udev_wait: float) -> tuple[Observed, Desired]:
    """Observe, waiting up to `udev_wait` seconds for udev to name new NICs."""
    observed = _observe(nl, metadata, config)
    desired = _desired(metadata, observed, config)
    deadline = time.monotonic() + udev_wait
    while waiting_for_udev(desired) and time.monotonic() < deadline:
        time.sleep(0.05)
        observed = _observe(nl, metadata, config)
        desired = _desired(metadata, observed, config)
    return observed, desired


def _desired(metadata: Metadata | None, observed: Observed, config: Config) -> Desired:
    """What the kernel should hold: the secondary ENIs (`desired_state`), each
    ENI that would take an address another NIC holds set aside as invalid
    (see taken.py), and the primary's secondary IPs (primary.py).

    An address held by another NIC is anybody else's, or the agent's own on a
    link where it stays (an ENI left as it is); the agent's own copy on a link
    it is about to clean up (an IP moving to another ENI) takes nothing: it
    goes in the same plan. Setting an ENI aside keeps its addresses, which may
    clash with another ENI in turn, hence the loop (at most once per ENI).
    """
    metadata = _set_aside(metadata, observed, observed.foreign_addresses)
    while True:
        desired = desired_state(metadata, observed, config)
        primary = primary_secondaries(metadata, observed, config, _kept_addresses(desired))
        kept = _kept_addresses(desired) | primary.kept
        more = _set_aside(metadata, observed, kept)
        if more is metadata:
            return desired._replace(addresses=desired.addresses | primary.addresses,
                                    frozen=desired.frozen | primary.kept)
        metadata = more


def _kept_addresses(desired: Desired) -> frozenset[Address]:
    return frozenset(a for a in desired.frozen if isinstance(a, Address))


def _set_aside(metadata: Metadata | None, observed: Observed, held) -> Metadata | None:
    """`metadata` with each ENI that lists an address in `held` (on a link
    not its own) moved to `invalid`; `metadata` itself when there is none."""
    refused = clashing(metadata, observed, held)
    if not refused:
        return metadata
    return Metadata(primary_mac=metadata.primary_mac,
                    enis=tuple(eni for eni in metadata.enis if eni.mac not in refused),
                    invalid=tuple(sorted((*invalid_enis(metadata), *(
                        InvalidEni(eni.mac, eni.eni_id, refused[eni.mac])
                        for eni in metadata.enis if eni.mac in refused)))))


def _guarded(metadata: Metadata | None, observed: Observed, desired: Desired) -> Metadata | None:
    """The metadata `_desired` worked from, told by the `desired` it returned."""
    if metadata is None or len(desired.enis) == len(metadata.secondary_enis):
        return metadata  # none set aside (the common case: no second look)
    return _set_aside(_set_aside(metadata, observed, observed.foreign_addresses), observed,
                      _kept_addresses(desired))


def _observe(nl: Netlink, metadata: Metadata | None, config: Config) -> Observed:
    """The kernel's state, with the routes in `main` that the agent may want
    to add but someone else already has (asked of the kernel one by one: its
    dumps skip main's prefixed foreign routes), so they are never replaced.

    A destination the agent routes in `main` already is not asked about: the
    kernel accepted the agent's route, so another to it was added beside it
    (a higher metric; `ip route append`, or `prepend` to win), which leaves
    the agent's alone, or replaced it, and the agent's is no longer observed.
    Once converged, a pass asks nothing (32 such questions cost a daemon's
    repair ~3.5 ms at 32 ENIs x 20 IPs)."""
    observed = nl.observe()
    routed = {r.dst for r in observed.routes if r.table == MAIN_TABLE}
    wanted = [] if metadata is None else [
        dst for dst in candidate_destinations(metadata, config) if dst not in routed]
    if not wanted:
        return observed
    answers = nl.route_lookups([(None, dst.network_address) for dst in wanted])
    taken = {(dst.version, dst.network_address, dst.prefixlen)
             for dst, answer in zip(wanted, answers)
             if not answer.error and answer.table == MAIN_TABLE
             and answer.dst_len == dst.prefixlen and answer.protocol != config.protocol}
    return observed._replace(
        foreign_main_destinations=observed.foreign_main_destinations | taken)


def waiting_for_udev(desired: Desired) -> bool:
    """Some listed NIC exists but udev has not finished with it yet."""
    return any(d.match is Match.PENDING and d.link is not None for d in desired.enis)


def _coexistence_warnings(d: DesiredEni, observed: Observed) -> list[str]:
    """Another tool (a DHCP client, a network manager) also working this NIC."""
    if d.link is None or d.match is not Match.MATCHED:
        return []
    warnings = unfollowed_warnings(d.following, d.link.name)
    ours = {a.ip for a in d.addresses}
    accounted = d.following.followed | {a for a, _ in d.following.unfollowed}
    for a in sorted(observed.foreign_addresses - accounted, key=Address.sort_key):
        if a.index == d.link.index and not a.ip.is_link_local:  # fe80::: the kernel's
            source = "listed in the metadata" if a.ip in ours else "not in the metadata"
            warnings.append(f"{d.link.name} also holds {a.ip}/{a.prefixlen}, added by another "
                            f"tool ({source}; a DHCP client or network manager?)")
    if d.link.index in observed.foreign_default_oifs:
        warnings.append(f"the main table has a default route via {d.link.name} that eni-agent "
                        "did not add (a DHCP client or network manager?)")
    return warnings


def _report(command: str, metadata: Metadata | None, config: Config, desired: Desired,
            observed: Observed, results: list[Result], remaining: list[Change],
            applied: bool = True, unapplied_state: EniState = EniState.OUT_OF_SYNC,
            queues: dict[str, QueueOutcome] | None = None) -> Report:
    """Per-ENI outcome. `applied=False` (dry-run, status): `remaining` is the
    plan still to do; otherwise it is what verification found not done."""
    metadata = _guarded(metadata, observed, desired)
    names = observed.link_names()
    for d in desired.enis:
        if d.link is not None:
            names.setdefault(d.link.index, d.link.name)
    by_index = {d.link.index: d for d in desired.enis if d.link is not None and d.table is not None}
    by_table = {d.table: d for d in by_index.values()}

    def owner(change: Change) -> DesiredEni | None:
        if isinstance(change.target, Rule):
            return by_table.get(change.target.table)
        return by_index.get(change.ifindex)

    report = Report(command=command)
    report.links = observed.links
    report.primary = _primary_report(metadata, observed, config, desired)
    primary_index = report.primary.ifindex if report.primary else None

    def entry_of(change: Change) -> EniReport | None:
        """The report entry a change belongs to (None: of no listed ENI)."""
        if primary_index is not None and isinstance(change.target, Address) \
                and change.ifindex == primary_index:
            return report.primary
        d = owner(change)
        return entries[d.eni.mac] if d else None
    report.warnings = host_warnings(observed, config) if metadata is not None else []
    report.warnings += desired.notes

    def others(change: Change) -> list[str]:
        """Where a change of no listed ENI is reported."""
        host_wide = isinstance(change.target, Rule) and change.target.table == MAIN_TABLE
        return report.host_changes if host_wide else report.other_changes
    entries: dict[str, EniReport] = {}
    for d in desired.enis:
        entry = EniReport(
            mac=d.eni.mac, eni_id=d.eni.eni_id, state=_STATE_OF_MATCH.get(d.match, unapplied_state),
            reason=d.reason, link=d.link.name if d.link else None,
            ifindex=d.link.index if d.link else None, table=d.table,
            addresses=[f"{ip}/{d.eni.cidr.prefixlen}" for ip in d.eni.ips] + [
                f"{ip}/{d.eni.ipv6_cidr.prefixlen}" for ip in d.eni.ipv6s],
            prefixes=[str(p) for p in d.eni.ipv4_prefixes + d.eni.ipv6_prefixes],
        )
        entry.followed = [f"{a.ip}/{a.prefixlen}" for a in sorted(d.following.followed)]
        if d.match in (Match.AMBIGUOUS, Match.CONFLICT):
            entry.errors.append(d.reason)
            report.converged = False
        if config.mtu is not None and d.link is not None:
            entry.mtu = d.link.mtu
        queue = (queues or {}).get(d.eni.mac)
        if queue is not None:
            entry.queues = queue.shown
            entry.changes += [queue.change] if queue.change else []
            entry.errors += [queue.error] if queue.error else []
            report.converged = report.converged and not queue.error
        entries[d.eni.mac] = entry
        report.enis.append(entry)
    invalid = _invalid_reports(metadata, observed, config)
    if invalid:
        report.enis = sorted([*report.enis, *invalid], key=lambda e: e.mac)

    for result in results:
        if result.outcome in (Outcome.DONE, Outcome.FAILED):
            text = result.change.describe(names)
            entry = entry_of(result.change)
            target = entry.changes if entry else others(result.change)
            line = text if result.outcome is Outcome.DONE else f"{text}: FAILED {result.error}"
            if line not in target:  # a change retried in each verify round is listed once
                target.append(line)

    failed_by_change = {r.change: r for r in results
                        if r.outcome in (Outcome.FAILED, Outcome.ALREADY)}
    for change in remaining:
        text = change.describe(names)
        entry = entry_of(change)
        if not applied:
            (entry.changes if entry else others(change)).append(text)
            continue
        previous = failed_by_change.get(change)
        why = (previous.error if previous and previous.error else
               "already present but not owned by eni-agent" if previous else "did not take effect")
        (entry.errors if entry else report.errors).append(f"{text}: {why}")
        report.converged = False
        report.unresolved += 1

    settled = [entries[d.eni.mac] for d in desired.enis if d.match is Match.MATCHED]
    if report.primary is not None and report.primary.state is not EniState.INVALID:
        settled.append(report.primary)
    for entry in settled:
        if entry.errors:
            entry.state = EniState.FAILED
        elif not entry.changes:
            entry.state = EniState.IN_SYNC
        elif applied:
            entry.state = EniState.CONFIGURED
        else:
            entry.state = unapplied_state
    return report


# A matched ENI's state depends on what was done (see the end of `_report`).
_STATE_OF_MATCH = {Match.PENDING: EniState.PENDING, Match.IGNORED: EniState.IGNORED,
                   Match.AMBIGUOUS: EniState.AMBIGUOUS, Match.CONFLICT: EniState.CONFLICT,
                   Match.DOWN: EniState.DOWN}


def _primary_report(metadata: Metadata | None, observed: Observed, config: Config,
                    desired: Desired) -> EniReport | None:
    """The primary's secondary IPs as `status` lists them: None when there is
    nothing to say (no secondary IPs listed, none of the agent's on it)."""
    primary = primary_secondaries(metadata, observed, config, _kept_addresses(desired))
    if primary.link is None or not (primary.listed or primary.kept or primary.addresses
                                    or any(a.index == primary.link.index
                                           for a in observed.addresses)):
        return None
    entry = EniReport(mac=primary.mac, eni_id=primary.eni_id, state=EniState.IN_SYNC,
                      reason="primary NIC: its secondary IPs", link=primary.link.name,
                      ifindex=primary.link.index,
                      addresses=[str(ip) for ip in primary.listed])
    if primary.error:
        entry.state = EniState.INVALID
        entry.errors.append(primary.error)
    if primary.warning:
        entry.warnings.append(primary.warning)
    return entry


def _invalid_reports(metadata: Metadata | None, observed: Observed,
                     config: Config) -> list[EniReport]:
    """The invalid ENIs: each left as it is, with the reason as its error
    (unless the config leaves its NIC alone anyway: then it is ignored)."""
    reports = []
    for eni in invalid_enis(metadata):
        links = [link for link in observed.links if link.mac == eni.mac and not link.parent]
        link = links[0] if len(links) == 1 else None
        ignored = ignored_on_host(eni, observed, config)
        entry = EniReport(mac=eni.mac, eni_id=eni.eni_id,
                          state=EniState.IGNORED if ignored else EniState.INVALID,
                          reason=ignored, link=link.name if link else None,
                          ifindex=link.index if link else None)
        if not ignored:
            entry.errors.append(eni.message)
        reports.append(entry)
    return reports
