"""The running daemon's own view, kept for operators: per ENI where it stands,
the metadata fetches, counters since start. Written as one root-only JSON
file beside the apply lock (/run/eni-agent/state.json) when it changes, at
most once a second; `eni-agent status` shows it while the daemon that wrote
it lives; `metrics_file` gets the same in the Prometheus text format.

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
WRITE_GAP = 1.0  # seconds: the files are rewritten at most this often
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
            state = str(e.state)
            enis[e.mac] = {
                "mac": e.mac, "eni_id": e.eni_id, "state": state, "reason": e.reason,
                "link": e.link, "ifindex": e.ifindex, "table": e.table,
                "addresses": list(e.addresses), "prefixes": list(e.prefixes),
                "followed_addresses": [],  # addresses followed from elsewhere (not yet)
                "errors": list(e.errors),
                "state_since": was.get("state_since", now) if was.get("state") == state
                or {was.get("state"), state} <= {"configured", "in-sync"} else now,
                "last_change": e.changes[-1] if e.changes else was.get("last_change"),
                "last_change_at": now if e.changes else was.get("last_change_at"),
            }
        self.enis = enis
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
            "counters": json.loads(json.dumps(self.counters, sort_keys=True)),
            "last_pass": self.last_pass,
        }

    def status_line(self, now: float) -> str:
        return status_line(self.document(now), now)


def status_line(doc: dict[str, Any], now: float) -> str:
    """systemd's STATUS=: where the daemon stands, in one line
    (`2 ENIs configured, 1 pending (no NIC yet); metadata read 22:41:05 UTC`).
    Absolute times: systemctl shows the line long after it was sent."""
    counts: dict[str, int] = {}
    why: dict[str, set[str]] = {}
    for e in doc["enis"]:
        state = "configured" if e["state"] in ("configured", "in-sync") else e["state"]
        counts[state] = counts.get(state, 0) + 1
        if e["reason"] and state not in ("configured", "out-of-sync", "failed"):
            why.setdefault(state, set()).add(_short(e["reason"]))
    order = ["configured", *sorted(s for s in counts if s != "configured")]
    parts = []
    for i, state in enumerate(s for s in order if s in counts):
        noun = ("ENI" if counts[state] == 1 else "ENIs") if i == 0 else ""
        reasons = f" ({', '.join(sorted(why[state]))})" if state in why and len(why[state]) <= 2 \
            else ""
        parts.append(" ".join(p for p in (str(counts[state]), noun, state) if p) + reasons)
    line = ", ".join(parts) or "no secondary ENIs"
    fetch = doc["metadata"]["last_fetch"]
    if fetch is None:
        line += "; metadata not read yet"
    elif fetch["outcome"] == "ok":
        line += f"; metadata read {_clock(fetch['at'])}"
    else:
        ok = doc["metadata"]["last_success_at"]
        line += f"; metadata read FAILED {_clock(fetch['at'])} ({fetch['kind']})" + (
            f", last read {_clock(ok)}" if ok else "")
    return line[:250]


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
