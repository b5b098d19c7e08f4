"""Reconcile: observe -> desired -> plan -> apply -> verify (observe again).

Shared by `sync`, `status`, `cleanup` and the daemon. The netlink adapter is
passed in, so this module never imports pyroute2 itself.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from eni_agent.config import Config
from eni_agent.desired import (Desired, DesiredEni, Match, desired_state, host_warnings,
                               ignored_reason, table_for)
from eni_agent.plan import Change, plan
from eni_agent.report import EniReport, EniState, Report, invalid_enis
from eni_agent.state import MAIN_TABLE, Address, Observed, Rule
from eni_agent.tuning import QueueOutcome, queue_outcomes

if TYPE_CHECKING:
    from eni_agent.model import Metadata
    from eni_agent.netlink import Netlink, Result

__all__ = ["Report", "preview", "reconcile", "waiting_for_udev"]  # Report: the daemon's import

VERIFY_ROUNDS = 3  # apply, observe, re-plan: at most this many times


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
        observed = nl.observe()
        desired = _desired(metadata, observed, config)
        changes = plan(desired, observed)
    report = _report(command, metadata, config, desired, observed, results, remaining=changes,
                     queues=queue_outcomes(desired, config, apply=True))
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
    report.converged = report.converged and not any(e.changes for e in report.enis) \
        and not report.other_changes and not report.host_changes
    _warn_about_others(report, desired, observed)
    return report


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
    observed = nl.observe()
    desired = _desired(metadata, observed, config)
    deadline = time.monotonic() + udev_wait
    while waiting_for_udev(desired) and time.monotonic() < deadline:
        time.sleep(0.05)
        observed = nl.observe()
        desired = _desired(metadata, observed, config)
    return observed, desired


def _desired(metadata: Metadata | None, observed: Observed, config: Config) -> Desired:
    """`desired_state`, with what the agent owns on the NICs of invalid ENIs
    left as it is: neither configured nor torn down."""
    desired = desired_state(metadata, observed, config)
    macs = {e.mac for e in invalid_enis(metadata) if not _ignored(e, observed, config)}
    indexes = {link.index for link in observed.links if link.mac in macs}
    if not indexes:
        return desired
    routes = {r for r in observed.routes if r.oif in indexes}
    tables = {r.table for r in routes} | {table_for(config, i) for i in indexes}
    kept = {a for a in observed.addresses if a.index in indexes} | routes | \
        {r for r in observed.rules if r.table in tables}
    return desired._replace(frozen=desired.frozen | kept)


def _ignored(eni, observed: Observed, config: Config) -> str:
    """Why the config leaves this (invalid) ENI's NIC alone, or ""."""
    names = [link.name for link in observed.links if link.mac == eni.mac] or [None]
    return next((why for why in (ignored_reason(eni.mac, eni.eni_id, name, config)
                                 for name in names) if why), "")


def waiting_for_udev(desired: Desired) -> bool:
    """Some listed NIC exists but udev has not finished with it yet."""
    return any(d.match is Match.PENDING and d.link is not None for d in desired.enis)


def _coexistence_warnings(d: DesiredEni, observed: Observed) -> list[str]:
    """Another tool (a DHCP client, a network manager) also working this NIC."""
    if d.link is None or d.match is not Match.MATCHED:
        return []
    warnings = []
    ours = {a.ip for a in d.addresses}
    for a in sorted(observed.foreign_addresses, key=Address.sort_key):
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
    report.warnings = host_warnings(observed, config) if metadata is not None else []

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
        if result.outcome in ("done", "failed"):
            text = result.change.describe(names)
            d = owner(result.change)
            target = entries[d.eni.mac].changes if d else others(result.change)
            line = text if result.outcome == "done" else f"{text}: FAILED {result.error}"
            if line not in target:  # a change retried in each verify round is listed once
                target.append(line)

    failed_by_change = {r.change: r for r in results if r.outcome in ("failed", "already")}
    for change in remaining:
        text = change.describe(names)
        d = owner(change)
        if not applied:
            (entries[d.eni.mac].changes if d else others(change)).append(text)
            continue
        previous = failed_by_change.get(change)
        why = (previous.error if previous and previous.error else
               "already present but not owned by eni-agent" if previous else "did not take effect")
        (entries[d.eni.mac].errors if d else report.errors).append(f"{text}: {why}")
        report.converged = False
        report.unresolved += 1

    for d in desired.enis:
        if d.match is not Match.MATCHED:
            continue
        entry = entries[d.eni.mac]
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


def _invalid_reports(metadata: Metadata | None, observed: Observed,
                     config: Config) -> list[EniReport]:
    """The invalid ENIs: each left as it is, with the reason as its error
    (unless the config leaves its NIC alone anyway: then it is ignored)."""
    reports = []
    for eni in invalid_enis(metadata):
        links = [link for link in observed.links if link.mac == eni.mac]
        link = links[0] if len(links) == 1 else None
        ignored = _ignored(eni, observed, config)
        entry = EniReport(mac=eni.mac, eni_id=eni.eni_id,
                          state=EniState.IGNORED if ignored else EniState.INVALID,
                          reason=ignored, link=link.name if link else None,
                          ifindex=link.index if link else None)
        if not ignored:
            entry.errors.append(eni.message)
        reports.append(entry)
    return reports
