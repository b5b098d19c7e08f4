"""What the daemon logs of its passes, without flooding the journal.

`ReportLog` writes a report's changes, and each ENI's problems and state
only when they change. `Repeats` summarizes a warning that keeps coming: the
first occurrence in full, then at most one line a SUMMARY_EVERY seconds
counting the repeats since (each repeat is a debug line).
"""

from __future__ import annotations

import logging

from eni_agent.journal import eni_fields
from eni_agent.relevance import DRIFT_REASONS
from eni_agent.report import SETTLED, EniState, Report

log = logging.getLogger("eni_agent.daemon")

SUMMARY_EVERY = 60.0
MAX_KEYS = 256


class Repeats:
    def __init__(self, every: float = SUMMARY_EVERY):
        self.every = every
        self.counts: dict[str, int] = {}  # repeats not yet logged, by key
        self.logged_at: dict[str, float] = {}

    def note(self, key: str, now: float) -> int | None:
        """None: say nothing now; 0: the first occurrence, say it; N: say that
        it happened N more times since the last line."""
        last = self.logged_at.get(key)
        if last is None:
            if len(self.logged_at) >= MAX_KEYS:  # bounded memory: start afresh
                self.logged_at.clear()
                self.counts.clear()
            self.logged_at[key], self.counts[key] = now, 0
            return 0
        self.counts[key] += 1
        if now - last < self.every:
            return None
        count, self.counts[key], self.logged_at[key] = self.counts[key], 0, now
        return count

    def forget(self, key: str) -> None:
        """The condition ended: its next occurrence is a first one again."""
        self.counts.pop(key, None)
        self.logged_at.pop(key, None)


def warn_summarized(repeats: Repeats, key: str, now: float, message: str) -> None:
    last = repeats.logged_at.get(key)
    count = repeats.note(key, now)
    if count == 0:
        log.warning("%s", message)
    elif count:
        log.warning("%s (%d more time(s) in the last %.0fs)", message, count, now - last)
    else:
        log.debug("%s", message)  # each one, for whoever asked for debug


def log_fight(repeats: Repeats, now: float, fight, ended: bool) -> None:
    """The back-off from another tool undoing the agent's work: when it begins
    or grows (summarized), and when it ends."""
    if ended:
        repeats.forget("fight")
        log.info("the agent's changes are no longer being undone; repairing at once again")
    if fight is not None and fight.gap:
        warn_summarized(repeats, "fight", now,
                        f"state keeps being undone ({fight.repairs} repairs): another tool is "
                        f"fighting over these NICs; repairs now at most every {fight.gap:g}s")


class ReportLog:
    def __init__(self) -> None:
        self.eni_states: dict[str, str] = {}
        self.eni_errors: dict[str, tuple[str, ...]] = {}
        self.host_warnings: set[str] = set()

    def write(self, report: Report, reasons: str) -> None:
        # Lines about an ENI carry journald fields: ENI_ID, MAC, IFNAME, EVENT.
        done = "repaired" if set(reasons.split(", ")) <= DRIFT_REASONS else "configured"
        for eni in report.entries:  # the primary's secondary IPs too
            where = f"{eni.label}" + (f" {eni.link}" if eni.link else "")
            for change in eni.changes:
                log.info("%s: %s (%s)", where, change, reasons, extra=eni_fields(eni, done))
            errors = tuple(eni.errors)
            if errors != self.eni_errors.get(eni.mac, ()):  # once per new problem, not per pass
                for error in errors:
                    log.warning("%s: %s", where, error, extra=eni_fields(
                        eni, "invalid" if eni.state is EniState.INVALID else "failed"))
            self.eni_errors[eni.mac] = errors
            previous = self.eni_states.get(eni.mac)
            steady = eni.state if eni.state not in SETTLED else "ok"
            if steady != previous and steady != "ok":
                log.info("%s: %s%s", where, eni.state, f" ({eni.reason})" if eni.reason else "",
                         extra=eni_fields(eni, str(eni.state)))
            self.eni_states[eni.mac] = steady
        for change in report.other_changes:
            log.info("%s (ENI detached or no longer listed; %s)", change, reasons,
                     extra={"event": "removed"})
        for change in report.host_changes:
            log.info("%s (host-wide; %s)", change, reasons)
        for error in report.errors:
            log.warning("%s", error)
        for warning in report.warnings:
            if warning not in self.host_warnings:  # once per daemon
                log.warning("%s", warning)
        self.host_warnings.update(report.warnings)
