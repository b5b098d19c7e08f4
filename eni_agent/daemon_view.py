"""The running daemon's own view, kept for operators: per ENI where it stands,
the metadata fetches, counters since start. Written as one root-only JSON
file beside the apply lock (/run/eni-agent/state.json) when it changes;
`eni-agent status` shows it while the daemon that wrote it lives;
`metrics_file` gets the same in the Prometheus text format, at most once a
second.

`DaemonView` is fed by the daemon (a pass's report, a fetch's outcome, lost
notifications) and takes every time from its caller (wall-clock seconds,
which the document carries); `document()` and `status_line()` are pure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from eni_agent.report import EniState, Report

SCHEMA = 1
STATE_NAME = "state.json"
WRITE_GAP = 1.0  # seconds: the metrics file is rewritten at most this often
# An error class's name -> the kind of a failed metadata fetch.
FETCH_FAILURE_KINDS = {"MetadataUnavailable": "unavailable", "InvalidInput": "invalid",
                       "PermissionDenied": "permission"}
# Why an ENI waits, in the status line: a reason's start -> its short form.
_SHORT_REASONS = (("no link", "no NIC yet"), ("waiting for udev", "udev naming it"))


def state_path() -> Path:
    """Where the daemon writes its view: beside the apply lock."""
    from eni_agent.lock import lock_path

    return Path(lock_path()).parent / STATE_NAME


def change_kind(text: str) -> str | None:
    """The counter a report's change line counts in ("add_address",
    "remove_rule", "link_up", ...); None for a failed change."""
    if ": FAILED" in text:
        return None
    words = text.split()
    if words[0] in ("add", "remove", "replace") and len(words) > 1:
        return f"{words[0]}_{words[1]}"
    if "promote_secondaries" in text:
        return "set_promote_secondaries"
    return "link_up" if words[:2] == ["set", "link"] else words[0]


class DaemonView:
    def __init__(self, pid: int, started_at: float, source: str, netns: int | None = None):
        self.pid, self.started_at, self.source, self.netns = pid, started_at, source, netns
        self.enis: dict[str, dict[str, Any]] = {}
        self.counters: dict[str, Any] = {"passes": 0, "repairs": 0, "changes": {},
                                         "fetch_failures": {}, "notifications_lost": 0}
        self.last_fetch: dict[str, Any] | None = None
        self.last_fetch_ok_at: float | None = None
        self.next_fetch_at: float | None = None
        self.last_pass: dict[str, Any] | None = None
        self.warnings: list[str] = []

    # -- what the daemon tells it ----------------------------------------------------

    def pass_done(self, report: Report, triggers: set[str], duration: float, repair: bool,
                  now: float) -> None:
        """A reconcile pass produced `report` (`repair`: it undid someone's change)."""
        counters = self.counters
        counters["passes"] += 1
        counters["repairs"] += int(repair)
        lines = [c for e in report.enis for c in e.changes] + report.other_changes \
            + report.host_changes
        for line in lines:
            kind = change_kind(line)
            if kind is not None:
                counters["changes"][kind] = counters["changes"].get(kind, 0) + 1
        enis = {}
        for e in report.enis:
            was = self.enis.get(e.mac, {})
            # Configured in this pass and verified: in sync now, as `status`
            # computing its own view would say (last_change says what was done).
            state = str(EniState.IN_SYNC if e.state is EniState.CONFIGURED else e.state)
            enis[e.mac] = {
                "mac": e.mac, "eni_id": e.eni_id, "state": state, "reason": e.reason,
                "link": e.link, "ifindex": e.ifindex, "table": e.table,
                "addresses": list(e.addresses), "prefixes": list(e.prefixes),
                "followed_addresses": list(e.followed),  # others' (a VIP), routed by it
                "errors": list(e.errors), "warnings": list(e.warnings),
                "state_since": was.get("state_since", now) if was.get("state") == state else now,
                "last_change": e.changes[-1] if e.changes else was.get("last_change"),
                "last_change_at": now if e.changes else was.get("last_change_at"),
            }
        self.enis = enis
        self.warnings = list(report.warnings)  # about the host as a whole
        self.last_pass = {"at": now, "duration_seconds": round(duration, 6),
                          "triggers": sorted(triggers), "converged": report.converged}

    def fetch_done(self, error: BaseException | None, now: float, next_at: float | None,
                   duration: float | None = None, kind: str | None = None) -> None:
        """A metadata read ended (`error` None: it succeeded)."""
        if error is None:
            self.last_fetch_ok_at = now
            outcome = {"outcome": "ok", "error": None, "kind": None}
        else:
            kind = kind or FETCH_FAILURE_KINDS.get(type(error).__name__, "other")
            failures = self.counters["fetch_failures"]
            failures[kind] = failures.get(kind, 0) + 1
            message = getattr(error, "message", None) or str(error)
            outcome = {"outcome": "failed", "error": message, "kind": kind}
        self.last_fetch = {"at": now, "source": self.source, **outcome,
                           "duration_seconds": None if duration is None else round(duration, 6)}
        self.next_fetch_at = next_at

    def notifications_lost(self) -> None:
        self.counters["notifications_lost"] += 1

    # -- what it says -------------------------------------------------------------------

    def document(self, now: float) -> dict[str, Any]:
        """The state file's document (docs/operating.md describes it)."""
        return {
            "schema": SCHEMA, "pid": self.pid, "netns": self.netns, "written_at": now,
            "started_at": self.started_at,
            "metadata": {"source": self.source, "last_fetch": self.last_fetch,
                         "last_success_at": self.last_fetch_ok_at,
                         "next_fetch_at": self.next_fetch_at},
            "enis": [self.enis[mac] for mac in sorted(self.enis)],
            "warnings": self.warnings,
            "counters": {**self.counters, "changes": dict(self.counters["changes"]),
                         "fetch_failures": dict(self.counters["fetch_failures"])},
            "last_pass": self.last_pass,
        }

    def status_line(self, now: float) -> str:
        return status_line(self.document(now), now)


def status_line(doc: dict[str, Any], now: float) -> str:
    """systemd's STATUS=: where the daemon stands, in one line, e.g.
    `converged: 2 in sync, 1 pending (no NIC yet); metadata read 22:41:05 UTC (pid 42)`.
    Clock times, not ages: systemctl shows the line long after it was sent."""
    counts: dict[str, int] = {}
    why: dict[str, set[str]] = {}
    for e in doc["enis"]:
        state = "in sync" if e["state"] in ("configured", "in-sync") else e["state"]
        counts[state] = counts.get(state, 0) + 1
        if e["reason"] and state in ("pending", "down"):
            why.setdefault(state, set()).add(_short(e["reason"]))
    parts = [f"{n} {state}" + (f" ({', '.join(sorted(why[state]))})" if state in why else "")
             for state, n in sorted(counts.items())]
    last = doc["last_pass"]
    verdict = "converged" if last is None or last["converged"] else "NOT converged"
    line = f"{verdict}: {', '.join(parts) or 'no secondary ENIs'}"
    fetch = doc["metadata"]["last_fetch"]
    if fetch is None:
        pass
    elif fetch["outcome"] == "ok":
        line += f"; metadata read {_clock(fetch['at'])}"
    else:
        ok = doc["metadata"]["last_success_at"]
        line += f"; metadata read FAILED {_clock(fetch['at'])} ({fetch['kind']})" + (
            f", last read {_clock(ok)}" if ok else "")
    suffix = f" (pid {doc['pid']})"
    return line[:199 - len(suffix)] + suffix


def _short(reason: str) -> str:
    for start, short in _SHORT_REASONS:
        if reason.startswith(start):
            return short
    return reason if len(reason) <= 40 else reason[:37] + "..."


def _clock(at: float) -> str:
    import time

    return time.strftime("%H:%M:%S UTC", time.gmtime(at))


def netns_inode() -> int | None:
    """This process's network namespace, to tell whose view a state file is."""
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return None


# -- reading it back (`eni-agent status`) ---------------------------------------------------

def daemon_alive(pid: int) -> bool:
    """A process with this PID runs, and it is an eni-agent daemon (not a
    process that got the PID of one that died)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return b"daemon" in argv and any(b"eni-agent" in a or b"eni_agent" in a for a in argv)


def read_live(path: Path, alive=daemon_alive, netns: int | None = None) -> dict[str, Any] | None:
    """The document a live daemon of this network namespace wrote, or None
    (no file, unreadable, another schema, its writer gone)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(
            doc.get("pid"), int):
        return None
    if netns is not None and doc.get("netns") not in (None, netns):
        return None
    return doc if alive(doc["pid"]) else None


def view_exit_code(doc: dict[str, Any]) -> int:
    """As `status` says it of its own view: 3 not in sync, 4 invalid ENIs, else 0."""
    from eni_agent.errors import ExitCode

    last = doc.get("last_pass")
    if last is not None and not last["converged"]:
        return int(ExitCode.NOT_CONVERGED)
    if any(e["state"] == str(EniState.INVALID) for e in doc["enis"]):
        return int(ExitCode.INVALID_INPUT)
    return int(ExitCode.OK)


def view_json(doc: dict[str, Any], now: float) -> str:
    return json.dumps({"view": "daemon", "age_seconds": round(max(0.0, now - doc["written_at"]), 3),
                       "exit_code": view_exit_code(doc), **doc}, indent=2)


def view_text(doc: dict[str, Any], now: float) -> str:
    from eni_agent.errors import printable

    age = max(0.0, now - doc["written_at"])
    lines = [f"the running daemon's view (pid {doc['pid']}, written {age:.0f} s ago; "
             "`eni-agent status --fresh` computes one now)"]
    for e in doc["enis"]:
        label = f"{e['eni_id']} {e['mac']}" if e["eni_id"] else e["mac"]
        where = " ".join(p for p in (e["link"], f"table {e['table']}" if e["table"] else None) if p)
        head = f"{label}{' ' + where if where else ''}: {e['state']} since {_clock(e['state_since'])}"
        if e["reason"] and e["state"] not in ("configured", "in-sync"):
            head += f" ({e['reason']})"
        lines.append(head)
        if e["addresses"]:
            lines.append(f"  addresses: {', '.join(e['addresses'])}")
        if e["followed_addresses"]:
            lines.append(f"  followed: {', '.join(e['followed_addresses'])}")
        if e["last_change"]:
            lines.append(f"  last change {_clock(e['last_change_at'])}: {e['last_change']}")
        lines.extend(f"  error: {error}" for error in e["errors"])
        lines.extend(f"  warning: {warning}" for warning in e.get("warnings", ()))
    lines.extend(f"warning: {warning}" for warning in doc.get("warnings", ()))
    metadata, fetch = doc["metadata"], doc["metadata"]["last_fetch"]
    if fetch is None:
        lines.append(f"metadata {metadata['source']}: not read yet")
    else:
        outcome = "ok" if fetch["outcome"] == "ok" else f"FAILED ({fetch['kind']}: {fetch['error']})"
        lines.append(f"metadata {metadata['source']}: read {_clock(fetch['at'])}: {outcome}")
    if metadata["next_fetch_at"] is not None:
        lines.append(f"  next read {_clock(metadata['next_fetch_at'])}")
    c = doc["counters"]
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(c["changes"].items())) or "none"
    failures = ", ".join(f"{k} {v}" for k, v in sorted(c["fetch_failures"].items())) or "none"
    lines.append(f"since {_clock(doc['started_at'])}: {c['passes']} passes, {c['repairs']} "
                 f"repairs, notifications lost {c['notifications_lost']}")
    lines.append(f"  changes: {kinds}; metadata read failures: {failures}")
    last = doc["last_pass"]
    if last is not None:
        lines.append(f"last pass {_clock(last['at'])}, {last['duration_seconds'] * 1000:.1f} ms "
                     f"({', '.join(last['triggers'])})")
    lines.append(f"status: {status_line(doc, now)}")
    return "\n".join(printable(line) for line in lines)
