"""`eni-agent daemon`: the sync engine, driven by events.

One thread, one `selectors` loop, no polling. It wakes for:
  - netlink notifications touching ENI links or the agent's own objects
    (hotplug, detach, link down, an owned rule/route/address removed),
  - the metadata file changing (written in place or replaced by rename),
  - a metadata fetch ending (the service is read on a worker thread),
  - signals (SIGTERM/SIGINT: exit 0 leaving the network configured;
    SIGHUP: reload config and metadata),
  - the periodic full resync (the safety net) and the systemd watchdog.
A bad or unreadable metadata document, or a netlink error, never tears
anything down: the last good document is kept, and the pass retried.

The loop is this module; the decisions are elsewhere, each driven by the
time the loop gives it: `relevance` (which notifications matter, which NICs
are new), `pacing` (when to reconcile: debounce, retries, the back-off from a
tool undoing the agent's work), `feed` (when to fetch the metadata service:
poll, failover burst, deadline, request budget), `daemon_log` (what to log).
docs/daemon-behaviour.md has the schedules and their values.

Boot never waits on metadata: without a first document READY=1 still goes
out READY_GRACE seconds after start, with STATUS=waiting for metadata:
<reason>, and the fetch keeps being retried. One daemon runs per network
namespace (`instance`): a second one exits 8 naming the first's PID.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import time
from pathlib import Path
from typing import Any

from eni_agent import instance
from eni_agent.config import Config, load_config
from eni_agent.daemon_ops import Operations
from eni_agent.daemon_log import Repeats, ReportLog, log, log_fight
from eni_agent.engine import reconcile
from eni_agent.errors import AgentError, Locked, PermissionDenied, one_line
from eni_agent.image_agents import Notices
from eni_agent.lock import apply_lock
from eni_agent.model import Metadata
from eni_agent.netlink import Netlink
from eni_agent.notify import Notifier, watchdog_interval
from eni_agent.pacing import ReconcileSchedule
from eni_agent.relevance import DRIFT_REASONS, LOST, EventFilter
from eni_agent.report import EniState, Report
from eni_agent.signals import SignalSocket
from eni_agent.sources import effective_source, is_service
from eni_agent.supply import MetadataSupply

LOCK_WAIT = 0.2  # the loop must stay responsive (signals); a held lock means retry soon
READY_GRACE = 10.0  # READY=1 at the latest this long after start, metadata or not
CAP_NET_ADMIN = 12


class Daemon:
    def __init__(self, config: Config, config_path: Path | None = None,
                 overrides: dict[str, Any] | None = None, notifier: Notifier | None = None,
                 now: float | None = None):
        now = time.monotonic() if now is None else now
        self.config = config
        self.config_path = config_path
        self.overrides = overrides or {}
        self.notifier = notifier or Notifier()
        self.ops = Operations(config)  # the state file, the metrics, the STATUS= line
        self.supply = MetadataSupply(config, self.notifier, self.ops)
        self.reload_metadata = True
        self.schedule = ReconcileSchedule(now, config.resync_interval)
        self.events = EventFilter(config.protocol)
        self.report_log = ReportLog()
        self.repeats = Repeats()
        self.notices = Notices()  # other tools holding an ENI, each logged once
        self.ready = False
        self.ready_deadline = now + READY_GRACE
        self.stopping = False
        self.watchdog = watchdog_interval()
        self.next_watchdog = now + self.watchdog if self.watchdog else None
        self.selector = selectors.DefaultSelector()
        self.nl: Netlink | None = None  # follows notifications: the selector reads it

    # -- lifecycle -----------------------------------------------------------

    def run(self) -> int:
        _check_privileges()
        holder = instance.claim()  # before anything else: a second daemon changes nothing
        self.signals = SignalSocket()
        for source, callback in ((holder, lambda: instance.answer(holder)),
                                 (self.signals, self._on_signal),
                                 (self.supply.fetcher, self._on_fetched)):
            self.selector.register(source, selectors.EVENT_READ, callback)
        self._open_netlink()
        self.supply.open_watch(self.selector, self._on_file)
        log.info("started (metadata %s, protocol %d, resync every %gs)",
                 effective_source(self.config.metadata), self.config.protocol,
                 self.config.resync_interval)
        try:
            while not self.stopping:
                for key, _ in self.selector.select(max(0.0, self.wake_at() - time.monotonic())):
                    key.data()
                if not self.stopping:
                    self.tick(time.monotonic())
        finally:
            self.notifier.send(STOPPING=1, STATUS="stopping; network configuration left in place")
            self._close()
            holder.close()
        log.info("stopped; network configuration left in place")
        return 0

    def wake_at(self) -> float:
        """The next time `tick` has something to do, events aside."""
        waiting = not self.ready and self.supply.metadata is None  # (else no busy loop)
        times = [self.schedule.wake_at(), self.supply.feed.wake_at(), self.next_watchdog,
                 self.ready_deadline if waiting else None, self.ops.publish_at]
        return min(t for t in times if t is not None)

    def tick(self, now: float) -> None:
        if self.ops.publish_at is not None and now >= self.ops.publish_at:
            self.ops.publish()  # a change held back by the once-a-second limit
        if self.next_watchdog is not None and now >= self.next_watchdog:
            if not self.supply.fetch_stuck(now):
                self.notifier.send(WATCHDOG=1)
            self.next_watchdog = now + self.watchdog
        self.supply.step(now)
        if not self.ready and now >= self.ready_deadline and self.supply.metadata is None:
            # Boot must not wait on the metadata service: say so, keep trying.
            self.ready = True
            reason = self.supply.waiting_reason
            self.notifier.send(READY=1, STATUS=f"waiting for metadata: {reason}"[:200])
            log.warning("ready without metadata (%s); still trying", reason)
        if self.schedule.resync_due(now):
            if self.nl is not None:
                self.nl.resync()  # read the kernel afresh, not through notifications
            # A file is cheap to re-read; the service is polled on its own clock.
            self.reload_metadata = self.reload_metadata or not is_service(self.config.metadata)
            self.schedule.request(now, 0, "periodic resync")
        reasons = self.schedule.begin(now)
        if reasons is not None:
            self.reconcile_once(now, reasons)
            if self.nl is not None and self.nl.pending:
                self._on_netlink()  # notifications read while verifying

    def _close(self) -> None:
        for closable in (self.nl, self.supply.watch, self.supply.fetcher, self.selector):
            with contextlib.suppress(OSError):
                if closable is not None:
                    closable.close()

    # -- netlink -------------------------------------------------------------

    def _open_netlink(self) -> None:
        """A netlink session following notifications; they wake the loop."""
        self.nl = Netlink(self.config.protocol, follow=True)
        self.events.own_port = self.nl.port
        self.events.kernel_marks_addresses = self.nl.marks_addresses
        self.selector.register(self.nl, selectors.EVENT_READ, self._on_netlink)

    def _on_netlink(self) -> None:
        now = time.monotonic()
        try:
            events = self.nl.drain()
        except OSError as e:
            log.warning("netlink event socket failed (%s); reopening and resyncing", e)
            self._reopen_netlink()
            self.schedule.request(now, 0, "netlink socket reopened")
            return
        self.events.know(self.supply.metadata)
        found = self.events.sort(events)
        if LOST in found.reasons:
            self.ops.notifications_lost()
        for reason in found.reasons:
            self.schedule.event(now, reason)
        if found.appeared or found.gone:
            self.supply.nics_changed(now, found.appeared, found.gone)

    def _reopen_netlink(self) -> None:
        if self.nl is not None:
            try:
                self.selector.unregister(self.nl)
                self.nl.close()
            except Exception:  # already broken
                pass
            self.nl = None
        self.events.forget_links()
        try:
            self._open_netlink()
        except Exception as e:
            log.error("cannot reopen netlink: %s", e)

    # -- the metadata ------------------------------------------------------------

    def _on_file(self) -> None:
        if self.supply.watch.changed():
            self.reload_metadata = True
            self.schedule.event(time.monotonic(), "metadata file changed")

    def _on_fetched(self) -> None:
        now = time.monotonic()
        for answer in self.supply.fetcher.answers():
            self.fetch_finished(now, answer)
        self.supply.step(now)

    def fetch_finished(self, now: float, answer: Metadata | AgentError) -> None:
        """A fetch of the service answered (the document, or why not)."""
        changed, why = self.supply.fetch_finished(now, answer, self.events.attached_macs())
        if changed or (not self.ready and self.supply.metadata is not None):
            self.schedule.request(now, 0, f"metadata fetched after: {why}")

    # -- signals ---------------------------------------------------------------

    def _on_signal(self) -> None:
        for signum in self.signals.received():
            if signum in (signal.SIGTERM, signal.SIGINT):
                log.info("%s received: exiting, network left configured", signum.name)
                self.stopping = True
            elif signum == signal.SIGHUP:
                self._reload_config()

    def _reload_config(self) -> None:
        config = _reloaded_config(self.config_path, self.overrides, self.config)
        if config is None:
            return
        source_changed = config.metadata != self.config.metadata
        self.config = config
        self.supply.reconfigure(config)
        self.ops.configure(config)
        self.schedule.resync_interval = config.resync_interval
        logging.getLogger("eni_agent").setLevel(config.log_level.upper())
        if source_changed:
            self.supply.open_watch(self.selector, self._on_file)
        log.info("SIGHUP: config and metadata reloaded")
        self.reload_metadata = True
        self.schedule.request(time.monotonic(), 0, "SIGHUP")

    # -- reconcile -------------------------------------------------------------

    def reconcile_once(self, now: float, triggers: frozenset[str]) -> None:
        reasons = ", ".join(sorted(triggers))
        service = self.supply.service
        if self.reload_metadata:
            self.reload_metadata = False
            if service:  # meanwhile, repair with the last good document
                self.supply.feed.want(now, reasons, urgent=True)
                self.supply.step(now)
            else:
                self.supply.load_file(now)
        metadata = self.supply.metadata
        self.events.know(metadata)
        if metadata is None:
            if not service:  # a fetch in flight or scheduled brings the first document
                self._retry(now, "no valid metadata yet")
            return
        started = time.monotonic()
        try:
            with apply_lock(timeout=LOCK_WAIT):
                report = reconcile(self.nl, metadata, self.config)
        except Locked:
            log.debug("another eni-agent is applying changes; retrying shortly")
            self.schedule.lock_held(now)
            return
        except AgentError as e:  # e.g. RuntimePathUnusable: /run full or read-only
            log.error("%s", e.message)
            _say_blocked(self, now, e.message)
            self._retry(now, e.message)
            return
        except Exception as e:  # netlink or socket trouble: reopen, resync, never die
            log.error("reconcile failed (%s: %s); reopening netlink and retrying",
                      type(e).__name__, one_line(e))
            self._reopen_netlink()
            self._retry(now, "netlink error")
            return
        self.report_produced(now, report, triggers, time.monotonic() - started)

    def report_produced(self, now: float, report: Report, triggers: frozenset[str],
                        duration: float = 0.0) -> None:
        """A pass produced a report: the one place it is logged and acted on."""
        self.report_log.write(report, ", ".join(sorted(triggers)))
        self.notices.log(self.config, report)
        self.events.remember(report)
        if any(eni.state is EniState.PENDING and eni.link for eni in report.enis):
            self.schedule.udev_pending(now)  # (bounded: the adapter gives udev 10 s)
        changed = bool(any(eni.changes for eni in report.enis) or report.other_changes)
        self.ops.pass_done(report, triggers, duration, repair=changed and triggers <= DRIFT_REASONS)
        fight = self.schedule.drift_repaired(now, triggers, changed)
        log_fight(self.repeats, now, fight, fight is None and self.schedule.backoff.ended(now))
        status = status_line(self.ops.status_line(), self.schedule.backoff.gap)
        if report.settled:
            # All the agent can do is done; ENIs in conflict or ambiguous need an
            # operator, and holding READY (and network-online.target) helps nobody.
            self.schedule.converged()
            if not self.ready:
                self.ready = True
                self.notifier.send(READY=1, STATUS=status)
                log.info("ready: %s", status)
                return
        else:
            self._retry(now, "not converged", quiet=True)
        self.notifier.send(STATUS=status)

    def _retry(self, now: float, why: str, quiet: bool = False) -> None:
        delay = self.schedule.retry(now, why)
        if not quiet:
            log.info("retrying in %.1fs (%s)", delay, why)
        self.reload_metadata = self.reload_metadata or self.supply.metadata is None


def _reloaded_config(path: Path | None, overrides: dict[str, Any],
                     running: Config) -> Config | None:
    """The config file read again (SIGHUP), or None to keep the running one."""
    try:
        config = load_config(path, overrides)
    except AgentError as e:
        log.error("SIGHUP: %s; keeping the running config", e.message)
        return None
    if config.protocol != running.protocol:
        log.error("SIGHUP: protocol cannot change while running (it marks what eni-agent "
                  "owns); keeping %d. Restart after `eni-agent cleanup`.", running.protocol)
        config = config.replace(protocol=running.protocol)
    return config


def _say_blocked(daemon: Daemon, now: float, why: str) -> None:
    """Nothing can be applied: say why in STATUS=; as with the wait for
    metadata, boot is not held for it (READY=1 once READY_GRACE is past)."""
    status = f"cannot apply: {why}"[:200]
    if not daemon.ready and now >= daemon.ready_deadline:
        daemon.ready = True
        daemon.notifier.send(READY=1, STATUS=status)
    else:
        daemon.notifier.send(STATUS=status)


def _check_privileges() -> None:
    """The daemon configures the network: without CAP_NET_ADMIN it could only
    fail forever. Refuse at once, in one line (exit 6)."""
    try:
        with open("/proc/self/status") as f:
            caps = next((line.split()[1] for line in f if line.startswith("CapEff:")), None)
    except OSError:
        caps = None
    if caps is None:
        if os.geteuid() == 0:
            return
    elif int(caps, 16) >> CAP_NET_ADMIN & 1:
        return
    raise PermissionDenied("daemon: needs CAP_NET_ADMIN to configure the network: run it as "
                           "root (the eni-agent systemd unit does)")


def status_line(view_line: str, repair_gap: float) -> str:
    """The STATUS= line: the daemon's view (daemon_view.status_line), and the
    repair back-off while another tool keeps undoing the agent's work."""
    if not repair_gap:
        return view_line
    return f"repairs backed off to {repair_gap:g}s (another tool undoes them); {view_line}"[:200]
