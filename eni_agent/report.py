"""What a reconcile or a preview found and did (`Report`, one `EniReport`
per listed ENI), and its forms: text for people, JSON for scripts."""

from __future__ import annotations

import enum
import json
from typing import TYPE_CHECKING

from eni_agent.errors import ExitCode, printable

if TYPE_CHECKING:
    from eni_agent.model import Metadata
    from eni_agent.state import Link


class EniState(str, enum.Enum):
    """Where one listed ENI stands, as `status`, `sync` and the daemon say it.

    The values are the words of the text and JSON reports (a str subclass, so
    `state == "pending"` holds too)."""

    CONFIGURED = "configured"  # changes were made, and verified
    IN_SYNC = "in-sync"  # nothing to do
    WOULD_CHANGE = "would-change"  # sync --dry-run: changes are planned
    OUT_OF_SYNC = "out-of-sync"  # status: changes are owed
    FAILED = "failed"  # some change failed or did not verify
    PENDING = "pending"  # no NIC with this MAC yet, or udev not done with it
    IGNORED = "ignored"  # the config says to leave this NIC alone
    AMBIGUOUS = "ambiguous"  # several NICs carry this MAC
    CONFLICT = "conflict"  # the ENI's table is someone else's
    INVALID = "invalid"  # the ENI's own metadata fields are invalid: left as it is
    DOWN = "down"  # its NIC was set down after it was configured: left as it is until brought up

    def __str__(self) -> str:
        return self.value


SETTLED = frozenset({EniState.CONFIGURED, EniState.IN_SYNC})  # the agent's work is done
# States the text report shows without their reason (the lines below say it).
_REASON_NOT_SHOWN = frozenset({EniState.IN_SYNC, EniState.CONFIGURED, EniState.OUT_OF_SYNC,
                               EniState.FAILED})


class EniReport:
    """What one reconcile found and did for one listed ENI (built by the engine)."""

    def __init__(self, mac: str, eni_id: str | None, state: EniState, reason: str = "",
                 link: str | None = None, ifindex: int | None = None, table: int | None = None,
                 addresses: list[str] | None = None, prefixes: list[str] | None = None):
        self.mac = mac
        self.eni_id = eni_id
        self.state = state
        self.reason = reason
        self.link = link
        self.ifindex = ifindex
        self.table = table
        self.addresses = addresses or []
        self.prefixes = prefixes or []  # delegated (ipv4-prefixes, ipv6-prefixes), as CIDRs
        self.followed: list[str] = []  # addresses others put on the NIC, routed through it
        self.changes: list[str] = []
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.mtu: int | None = None  # shown with config `mtu` set
        self.queues: str | None = None  # shown with config `queues` set

    @property
    def label(self) -> str:
        return f"{self.eni_id} {self.mac}" if self.eni_id else self.mac

    def as_dict(self) -> dict:
        return {name: list(value) if isinstance(value, list) else
                str(value) if isinstance(value, EniState) else value
                for name, value in vars(self).items()}


class Report:
    def __init__(self, command: str, dry_run: bool = False):
        self.command = command
        self.dry_run = dry_run
        self.enis: list[EniReport] = []
        self.other_changes: list[str] = []  # stale state of ENIs no longer here
        self.host_changes: list[str] = []  # of no one ENI (main_table_first's rule)
        self.warnings: list[str] = []  # about the host as a whole (Terway's rules seen)
        self.errors: list[str] = []
        self.converged = True
        # Changes still owed after verification. Zero with converged=False
        # means only ENIs needing an operator (conflict, ambiguous) are left:
        # the agent has done all it can.
        self.unresolved = 0
        self.links: tuple[Link, ...] = ()  # as last observed (the daemon compares events to them)
        # The primary NIC's secondary IPs (docs/primary-nic.md), when there is
        # something to say about them; not one of `enis` (not a secondary ENI).
        self.primary: EniReport | None = None

    @property
    def entries(self) -> list[EniReport]:
        """The primary's entry (if any), then the secondary ENIs'."""
        return ([self.primary] if self.primary else []) + self.enis

    @property
    def settled(self) -> bool:
        return self.unresolved == 0

    @property
    def invalid(self) -> list[EniReport]:
        """ENIs left as they are because their own metadata is invalid."""
        return [eni for eni in self.entries if eni.state is EniState.INVALID]

    def tally(self, alias: dict[str, str] | None = None) -> str:
        """'2 configured, 1 pending' (states renamed through `alias`)."""
        counts: dict[str, int] = {}
        for eni in self.enis:
            state = (alias or {}).get(eni.state, str(eni.state))
            counts[state] = counts.get(state, 0) + 1
        return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or \
            "no secondary ENIs"

    @property
    def exit_code(self) -> ExitCode:
        """3 when the kernel is not as the metadata says (after `sync` tried;
        for `status`, as it stands); else 4 when invalid ENIs were left alone
        (the rest is done); else 0."""
        if not self.converged:
            return ExitCode.NOT_CONVERGED
        return ExitCode.INVALID_INPUT if self.invalid else ExitCode.OK

    def as_dict(self) -> dict:
        return {
            "command": self.command,
            "dry_run": self.dry_run,
            "result": "converged" if self.converged else "not-converged",
            "exit_code": int(self.exit_code),
            "enis": [eni.as_dict() for eni in self.enis],
            "primary": self.primary.as_dict() if self.primary else None,
            "other_changes": self.other_changes,
            "host_changes": self.host_changes,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def invalid_enis(metadata: Metadata | None) -> tuple:
    """The listed ENIs whose own fields are invalid (each with .mac, .eni_id
    and .message), left out of `metadata.enis`."""
    # TODO(model): `Metadata.invalid` is being added; read it directly then.
    return tuple(getattr(metadata, "invalid", ())) if metadata is not None else ()


def report_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, sort_keys=False)


def report_text(report: Report) -> str:
    lines = []
    for eni in report.entries:
        where = " ".join(
            part for part in (eni.link, f"table {eni.table}" if eni.table else None) if part
        )
        head = f"{eni.label}{' ' + where if where else ''}: {eni.state}"
        if eni.reason and eni.state not in _REASON_NOT_SHOWN:
            head += f" ({eni.reason})"
        lines.append(head)
        if eni.prefixes:
            lines.append(f"  prefixes: {', '.join(eni.prefixes)}")
        if eni is report.primary and eni.addresses:
            lines.append(f"  secondary IPs: {', '.join(eni.addresses)}")
        if eni.followed:
            lines.append(f"  followed: {', '.join(eni.followed)}")
        tuned = [f"mtu {eni.mtu}" if eni.mtu else "", f"queues {eni.queues}" if eni.queues else ""]
        if any(tuned):
            lines.append(f"  link: {', '.join(t for t in tuned if t)}")
        verb = "would " if report.dry_run else ("needs: " if report.command == "status" else "")
        lines.extend(f"  {verb}{change}" for change in eni.changes)
        lines.extend(f"  error: {error}" for error in eni.errors)
        lines.extend(f"  warning: {warning}" for warning in eni.warnings)
    if report.other_changes:
        lines.append("everything eni-agent owns:" if report.command == "cleanup"
                     else "state of ENIs no longer attached or listed:")
        prefix = "would " if report.dry_run else ("needs: " if report.command == "status" else "")
        lines.extend(f"  {prefix}{change}" for change in report.other_changes)
    if report.host_changes:
        lines.append("host-wide:")
        prefix = "would " if report.dry_run else ("needs: " if report.command == "status" else "")
        lines.extend(f"  {prefix}{change}" for change in report.host_changes)
    lines.extend(f"error: {error}" for error in report.errors)
    lines.extend(f"warning: {warning}" for warning in report.warnings)
    lines.append(_summary(report))
    return "\n".join(printable(line) for line in lines)


def _summary(report: Report) -> str:
    parts = report.tally()
    if report.command == "status":
        verdict = ("NOT in sync" if not report.converged else
                   "NOT in sync (invalid ENIs left as they are)" if report.invalid else "in sync")
    elif report.dry_run:
        verdict = "dry run, nothing changed"
    else:
        verdict = "converged" if report.converged else "NOT converged"
    return f"{report.command}: {verdict}: {parts}"


def metadata_text(metadata: Metadata, source: str) -> str:
    invalid = invalid_enis(metadata)
    verdict = f"valid except {len(invalid)} invalid ENI(s)" if invalid else "valid"
    lines = [f"{source}: {verdict}, primary NIC {metadata.primary_mac}, "
             f"{len(metadata.secondary_enis)} secondary ENI(s)"]
    for eni in metadata.secondary_enis:
        ips = ", ".join(str(ip) for ip in eni.ips)
        lines.append(f"  {eni.name}: {ips} in {eni.cidr} via {eni.gateway}")
        if eni.ipv6s:
            ips = ", ".join(str(ip) for ip in eni.ipv6s)
            lines.append(f"  {' ' * len(eni.name)}  {ips} in {eni.ipv6_cidr} via {eni.ipv6_gateway}")
        prefixes = eni.ipv4_prefixes + eni.ipv6_prefixes
        if prefixes:
            lines.append(f"  {' ' * len(eni.name)}  prefixes: "
                         f"{', '.join(str(p) for p in prefixes)}")
    for bad in invalid:
        lines.append(f"  {bad.eni_id} ({bad.mac}): invalid" if bad.eni_id else
                     f"  {bad.mac}: invalid")
    return "\n".join(printable(line) for line in lines)


def metadata_json(metadata: Metadata, source: str) -> str:
    invalid = invalid_enis(metadata)
    return json.dumps({
        "source": source,
        "valid": not invalid,
        "primary_mac": metadata.primary_mac,
        "enis": [
            {"mac": e.mac, "eni_id": e.eni_id, "primary": e.mac == metadata.primary_mac,
             "ips": [str(ip) for ip in e.ips], "vswitch_cidr": str(e.cidr),
             "gateway": str(e.gateway), "ipv6s": [str(ip) for ip in e.ipv6s],
             "vswitch_ipv6_cidr": str(e.ipv6_cidr) if e.ipv6_cidr else None,
             "ipv6_gateway": str(e.ipv6_gateway) if e.ipv6_gateway else None,
             "prefixes": [str(p) for p in e.ipv4_prefixes + e.ipv6_prefixes]}
            for e in metadata.enis
        ],
        "invalid_enis": [{"mac": e.mac, "eni_id": e.eni_id, "error": e.message} for e in invalid],
    }, indent=2)
