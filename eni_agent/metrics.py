"""The daemon's view in the Prometheus text format (exposition format 0.0.4),
for node_exporter's textfile collector (`metrics_file`): counters since the
daemon started, ENIs per state, the last metadata read, the last pass.

`render_metrics(document)` is pure: it reads the state file's document
(daemon_view.py); `Publisher` writes both files when they changed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from eni_agent.report import EniState

PREFIX = "eni_agent_"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(lines: list[str], name: str, kind: str, help_text: str,
            samples: list[tuple[dict[str, str], float]]) -> None:
    if not samples:
        return
    lines += [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} {kind}"]
    for labels, value in samples:
        shown = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        lines.append(f"{PREFIX}{name}{'{' + shown + '}' if shown else ''} {value!r}"
                     if isinstance(value, float) else
                     f"{PREFIX}{name}{'{' + shown + '}' if shown else ''} {value}")


def render_metrics(doc: dict[str, Any]) -> str:
    counters = doc["counters"]
    lines: list[str] = []
    _family(lines, "passes_total", "counter", "Reconcile passes since the daemon started.",
            [({}, counters["passes"])])
    _family(lines, "repairs_total", "counter",
            "Passes that undid another tool's change to the agent's state.",
            [({}, counters["repairs"])])
    _family(lines, "changes_total", "counter", "Kernel changes made, by kind.",
            [({"kind": k}, v) for k, v in sorted(counters["changes"].items())]
            or [({"kind": "add_address"}, 0)])
    _family(lines, "metadata_fetch_failures_total", "counter",
            "Failed metadata reads, by kind (unavailable, invalid, permission, timeout).",
            [({"kind": k}, counters["fetch_failures"].get(k, 0))
             for k in sorted({"unavailable", "invalid", "timeout", *counters["fetch_failures"]})])
    _family(lines, "netlink_notifications_lost_total", "counter",
            "Times netlink notifications were lost (ENOBUFS) and the kernel was read in full.",
            [({}, counters["notifications_lost"])])
    states = {str(s): 0 for s in EniState}
    for eni in doc["enis"]:
        states[eni["state"]] = states.get(eni["state"], 0) + 1
    _family(lines, "enis", "gauge", "Listed secondary ENIs, by state.",
            [({"state": s}, n) for s, n in sorted(states.items())])
    _family(lines, "start_time_seconds", "gauge", "When the daemon started (Unix time).",
            [({}, float(doc["started_at"]))])
    metadata = doc["metadata"]
    if metadata["last_success_at"] is not None:
        _family(lines, "metadata_last_success_timestamp_seconds", "gauge",
                "When the metadata was last read successfully (Unix time).",
                [({}, float(metadata["last_success_at"]))])
    fetch = metadata["last_fetch"]
    if fetch is not None:
        _family(lines, "metadata_last_fetch_success", "gauge",
                "1 if the last metadata read succeeded, else 0.",
                [({}, int(fetch["outcome"] == "ok"))])
        if fetch.get("duration_seconds") is not None:
            _family(lines, "metadata_last_fetch_duration_seconds", "gauge",
                    "How long the last metadata read took.",
                    [({}, float(fetch["duration_seconds"]))])
    last = doc["last_pass"]
    if last is not None:
        _family(lines, "last_pass_duration_seconds", "gauge",
                "How long the last reconcile pass took (observe, plan, apply, verify).",
                [({}, float(last["duration_seconds"]))])
        _family(lines, "last_pass_timestamp_seconds", "gauge",
                "When the last reconcile pass ended (Unix time).", [({}, float(last["at"]))])
        _family(lines, "last_pass_converged", "gauge",
                "1 if the last pass left every ENI as the agent can make it, else 0.",
                [({}, int(last["converged"]))])
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str, mode: int) -> None:
    """Replace `path` by a file holding `text` (a reader sees the old or the
    new file, never half of one)."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class Publisher:
    """Writes the state file (root only) whenever what it says changed, and the
    metrics file (readable by node_exporter) when it changed, at most once per
    `gap` seconds (a scrape every few seconds needs no more).

    `flush(document_at, now)` is called after each change, and again when its
    last answer (seconds until a held-back write is due, or None) comes due."""

    def __init__(self, state_path: Path | None, metrics_path: Path | None, gap: float):
        self.paths = {"state": state_path, "metrics": metrics_path}
        self.gaps = {"state": 0.0, "metrics": gap}
        self.written: dict[str, str] = {}
        self.last_write = {"state": float("-inf"), "metrics": float("-inf")}
        self.failed: dict[str, str] = {}  # what failed to write, and why (logged once each)

    def flush(self, document_at, now: float) -> float | None:
        doc = document_at(now)
        wait = None
        for kind, (text, stable) in self._texts(doc).items():
            if self.written.get(kind) == stable:
                continue
            since = now - self.last_write[kind]
            # (a clock stepped back: write now; a millisecond early is on time)
            if 0 <= since < self.gaps[kind] - 0.001:
                held = self.gaps[kind] - since
                wait = held if wait is None else min(wait, held)
                continue
            try:
                write_atomically(self.paths[kind], text, 0o600 if kind == "state" else 0o644)
            except OSError as e:
                self.failed[kind] = f"{self.paths[kind]}: {e.strerror or e}"
                continue
            self.failed.pop(kind, None)
            self.written[kind] = stable
            self.last_write[kind] = now
        return wait

    def _texts(self, doc: dict[str, Any]) -> dict[str, tuple[str, str]]:
        """Each file's text, and what says whether it changed (the state
        document but its own write time). Compact JSON: the C encoder."""
        texts = {}
        if self.paths["state"] is not None:
            stable = json.dumps({k: v for k, v in doc.items() if k != "written_at"},
                                sort_keys=True)
            texts["state"] = (json.dumps(doc, sort_keys=True) + "\n", stable)
        if self.paths["metrics"] is not None:
            text = render_metrics(doc)
            texts["metrics"] = (text, text)
        return texts
