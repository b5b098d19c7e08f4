"""Reconcile: observe -> desired -> plan -> apply -> verify (observe again).

Shared by `sync`, `status`, `cleanup` and the daemon. The netlink adapter is
passed in, so this module never imports pyroute2 itself.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from eni_agent.config import Config
from eni_agent.desired import Desired, DesiredEni, Match, desired_state
from eni_agent.errors import ExitCode
from eni_agent.model import Metadata
from eni_agent.plan import Change, plan
from eni_agent.state import Address, Link, Observed, Rule

if TYPE_CHECKING:
    from eni_agent.netlink import Netlink, Result

VERIFY_ROUNDS = 3  # apply, observe, re-plan: at most this many times


class EniReport:
    """What one reconcile found and did for one listed ENI (built up by `_report`)."""

    def __init__(self, mac: str, eni_id: str | None, state: str, reason: str = "",
                 link: str | None = None, ifindex: int | None = None, table: int | None = None,
                 addresses: list[str] | None = None):
        self.mac = mac
        self.eni_id = eni_id
        self.state = state  # configured | in-sync | would-change | out-of-sync | failed | ...
        self.reason = reason
        self.link = link
        self.ifindex = ifindex
        self.table = table
        self.addresses = addresses or []
        self.changes: list[str] = []
        self.errors: list[str] = []
        self.warnings: list[str] = []

    @property
    def label(self) -> str:
        return f"{self.eni_id} {self.mac}" if self.eni_id else self.mac

    def as_dict(self) -> dict:
        return {name: list(value) if isinstance(value, list) else value
                for name, value in vars(self).items()}


class Report:
    def __init__(self, command: str, dry_run: bool = False):
        self.command = command
        self.dry_run = dry_run
        self.enis: list[EniReport] = []
        self.other_changes: list[str] = []  # stale state of ENIs no longer here
        self.errors: list[str] = []
        self.converged = True
        # Changes still owed after verification. Zero with converged=False
        # means only ENIs needing an operator (conflict, ambiguous) are left:
        # the agent has done all it can.
        self.unresolved = 0
        self.links: tuple[Link, ...] = ()  # as last observed (the daemon compares events to them)

    @property
    def settled(self) -> bool:
        return self.unresolved == 0

    def tally(self, alias: dict[str, str] | None = None) -> str:
        """'2 configured, 1 pending' (states renamed through `alias`)."""
        counts: dict[str, int] = {}
        for eni in self.enis:
            state = (alias or {}).get(eni.state, eni.state)
            counts[state] = counts.get(state, 0) + 1
        return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or \
            "no secondary ENIs"

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.converged else ExitCode.CHANGE_FAILED

    def as_dict(self) -> dict:
        return {
            "command": self.command,
            "dry_run": self.dry_run,
            "result": "converged" if self.converged else "not-converged",
            "exit_code": int(self.exit_code),
            "enis": [eni.as_dict() for eni in self.enis],
            "other_changes": self.other_changes,
            "errors": self.errors,
        }


def reconcile(nl: Netlink, metadata: Metadata | None, config: Config, *, dry_run: bool = False,
              command: str = "sync", udev_wait: float = 0.0) -> Report:
    """Make the kernel match the metadata; `metadata=None` removes all owned state.

    `udev_wait`: for up to this long, wait for udev to finish with new NICs
    before planning (a one-shot run at boot races udev's coldplug).
    """
    observed = nl.observe()
    desired = desired_state(metadata, observed, config)
    deadline = time.monotonic() + udev_wait
    while waiting_for_udev(desired) and time.monotonic() < deadline:
        time.sleep(0.05)
        observed = nl.observe()
        desired = desired_state(metadata, observed, config)
    changes = plan(desired, observed)
    if dry_run:
        report = _report(command, desired, observed, results=[], remaining=changes, applied=False,
                         unapplied_state="would-change")
        report.dry_run = True
        return report
    results: list[Result] = []
    for _ in range(VERIFY_ROUNDS):
        if not changes:
            break
        results.extend(nl.apply(changes))
        observed = nl.observe()
        desired = desired_state(metadata, observed, config)
        changes = plan(desired, observed)
    return _report(command, desired, observed, results, remaining=changes)


def waiting_for_udev(desired: Desired) -> bool:
    """Some listed NIC exists but udev has not finished with it yet."""
    return any(d.match is Match.PENDING and d.link is not None for d in desired.enis)


def status(nl: Netlink, metadata: Metadata, config: Config) -> Report:
    """Desired vs observed, changing nothing."""
    observed = nl.observe()
    desired = desired_state(metadata, observed, config)
    report = _report("status", desired, observed, results=[], remaining=plan(desired, observed),
                     applied=False)
    report.converged = report.converged and not any(e.changes for e in report.enis) \
        and not report.other_changes
    for eni_report, d in zip(report.enis, desired.enis, strict=True):
        eni_report.warnings.extend(_coexistence_warnings(d, observed))
    return report


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


def _report(command: str, desired: Desired, observed: Observed, results: list[Result],
            remaining: list[Change], applied: bool = True,
            unapplied_state: str = "out-of-sync") -> Report:
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
    entries: dict[str, EniReport] = {}
    for d in desired.enis:
        entry = EniReport(
            mac=d.eni.mac, eni_id=d.eni.eni_id, state=str(d.match), reason=d.reason,
            link=d.link.name if d.link else None, ifindex=d.link.index if d.link else None,
            table=d.table, addresses=[f"{ip}/{d.eni.cidr.prefixlen}" for ip in d.eni.ips] + [
                f"{ip}/{d.eni.ipv6_cidr.prefixlen}" for ip in d.eni.ipv6s],
        )
        if d.match in (Match.AMBIGUOUS, Match.CONFLICT):
            entry.errors.append(d.reason)
            report.converged = False
        entries[d.eni.mac] = entry
        report.enis.append(entry)

    for result in results:
        if result.outcome in ("done", "failed"):
            text = result.change.describe(names)
            d = owner(result.change)
            target = entries[d.eni.mac].changes if d else report.other_changes
            line = text if result.outcome == "done" else f"{text}: FAILED {result.error}"
            if line not in target:  # a change retried in each verify round is listed once
                target.append(line)

    failed_by_change = {r.change: r for r in results if r.outcome in ("failed", "already")}
    for change in remaining:
        text = change.describe(names)
        d = owner(change)
        if not applied:
            (entries[d.eni.mac].changes if d else report.other_changes).append(text)
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
            entry.state = "failed"
        elif not entry.changes:
            entry.state = "in-sync"
        elif applied:
            entry.state = "configured"
        else:
            entry.state = unapplied_state
    return report
