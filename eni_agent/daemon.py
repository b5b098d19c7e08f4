"""`eni-agent daemon`: the sync engine, driven by events.

One thread, one `selectors` loop, no polling. It wakes for:
  - netlink notifications touching ENI links or the agent's own objects
    (hotplug, detach, link down, an owned rule/route/address removed),
  - the metadata file changing (written in place or replaced by rename),
  - signals (SIGTERM/SIGINT: exit 0 leaving the network configured;
    SIGHUP: reload config and metadata),
  - the periodic full resync (the safety net) and the systemd watchdog.
Bursts are debounced; one reconcile runs at a time. A bad or unreadable
metadata document, or a netlink error, never tears anything down: the last
good document is kept, and the reconcile retried with backoff.

Boot never waits on metadata: without a first document READY=1 still goes
out READY_GRACE seconds after start, with STATUS=waiting for metadata:
<reason>, and the fetch keeps being retried (at most FETCH_RETRY apart).

The metadata service (a source given as a URL) is read on a worker thread:
  - every `metadata_interval` seconds (±10%), and at once on SIGHUP;
  - in a burst when a NIC the metadata does not list appears (an ENI attached
    or moved here, usually before the service lists it): BURST_FIRST seconds
    doubling to BURST_MAX, until the listing names it or BURST_FOR seconds
    pass. Only NICs with a globally administered MAC (not veths, bridges,
    tunnels) and not ignored by the config start a burst;
  - a fetch still running FETCH_ABANDON seconds after it started (the client
    has its own 10 s deadline) is abandoned and the next one started; while a
    fetch thread is stuck past FETCH_STUCK the systemd watchdog is not fed,
    so systemd restarts a daemon that can no longer see the service.
An ENI the service stops listing while its NIC is still attached is kept
until the next fetch (FETCH_GAP later) agrees; a NIC that disappears is
cleaned up at once.
"""

from __future__ import annotations

import collections
import fnmatch
import logging
import os
import queue
import random
import selectors
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from eni_agent.coexist import keep_others_off
from eni_agent.config import Config, load_config
from eni_agent.engine import reconcile
from eni_agent.errors import AgentError, Locked, MetadataUnavailable, PermissionDenied, one_line
from eni_agent.image_agents import Notices
from eni_agent.lock import apply_lock
from eni_agent.model import Metadata
from eni_agent.netlink import Event, Netlink, link_state
from eni_agent.notify import Notifier, watchdog_interval
from eni_agent.report import SETTLED, EniState, Report
from eni_agent.sources import effective_source, forget_client, is_service, load_metadata
from eni_agent.watch import FileWatch

log = logging.getLogger("eni_agent.daemon")

DEBOUNCE = 0.002  # seconds to gather a burst of events (they arrive together) into one reconcile
RETRY_MIN, RETRY_MAX = 0.5, 30.0
LOCK_WAIT = 0.2  # the loop must stay responsive (signals); a held lock means retry soon
LOCK_RETRY = 0.25
# Triggers that mean someone undid our work (as opposed to a hotplug, a
# detach or new metadata, which legitimately change things in bursts).
DRIFT_REASONS = frozenset({"address event", "route event", "rule event"})
FIGHT_WINDOW, FIGHT_REPAIRS, FIGHT_GAP = 10.0, 10, 1.0
UDEV_RECHECK = 0.1
FETCH_GAP = 2.0  # at most one metadata-service fetch this often for unknown NICs
FETCH_RETRY = 10.0  # after a failed service fetch, try again this soon
BURST_FIRST, BURST_MAX, BURST_FOR = 0.25, 1.0, 60.0  # fetches until a new NIC is listed
FETCH_ABANDON = 15.0  # a fetch still running this long after its start is abandoned
FETCH_STUCK = 60.0  # a fetch thread stuck this long stops the watchdog
READY_GRACE = 10.0  # READY=1 at the latest this long after start, metadata or not
CAP_NET_ADMIN = 12


class Daemon:
    def __init__(self, config: Config, config_path: Path | None = None,
                 overrides: dict[str, Any] | None = None, notifier: Notifier | None = None):
        self.config = config
        self.config_path = config_path
        self.overrides = overrides or {}
        self.notifier = notifier or Notifier()
        self.metadata: Metadata | None = None
        self.reload_metadata = True
        self.reasons: set[str] = {"start"}
        self.due: float | None = time.monotonic()
        self.next_resync = self.due + config.resync_interval
        self.next_fetch: float | None = None  # service sources: the next poll
        self.last_fetch = float("-inf")
        # Service fetches run on a worker thread (a hanging service must not
        # hold up signals, hotplug or drift repair); the result comes back
        # through a queue and a wake-up socket in the selector.
        self.fetching: threading.Thread | None = None
        self.fetch_again = False
        self.fetch_reasons: set[str] = set()  # why we asked, for the reconcile's log lines
        self.fetch_failures = 0
        self.fetch_started = 0.0
        self.fetch_generation = 0  # results of abandoned fetches are ignored
        self.abandoned: list[tuple[threading.Thread, float]] = []
        self.stuck_logged = False
        # NICs with a MAC the metadata does not list, and when each appeared:
        # fetched for in a burst until listed (or BURST_FOR has passed).
        self.unknown_nics: dict[str, float] = {}
        self.other_nics: set[str] = set()  # unlisted NICs that start no burst
        self.burst_delay = BURST_FIRST
        # Listed ENIs a fetch left out while their NIC stayed attached: kept
        # once, dropped when the next fetch leaves them out too.
        self.unlisted_once: set[str] = set()
        self.waiting_reason = "no answer yet"
        self.ready_deadline: float | None = None
        self._fetched: queue.SimpleQueue = queue.SimpleQueue()
        self.failures = 0
        self.ready = False
        self.stopping = False
        self.managed_indexes: set[int] = set()
        self.managed_tables: set[int] = set()
        # What each link looked like at the last observation or event since: a
        # notification repeating it (IPv6 DAD finishing, carrier, statistics)
        # changes nothing the plan reads.
        self.link_states: dict[int, tuple] = {}
        self.eni_states: dict[str, str] = {}
        self.eni_errors: dict[str, tuple[str, ...]] = {}
        self.host_warnings_logged: set[str] = set()
        self.notices = Notices()  # other tools holding an ENI, each logged once
        self.repairs: collections.deque[float] = collections.deque()
        self.last_reconcile = 0.0
        self.watchdog = watchdog_interval()
        self.next_watchdog = time.monotonic() + self.watchdog if self.watchdog else None
        self.selector = selectors.DefaultSelector()
        self.nl: Netlink | None = None  # follows notifications: the selector reads it
        self.watch: FileWatch | None = None

    # -- lifecycle -----------------------------------------------------------

    def run(self) -> int:
        _check_privileges()
        self.ready_deadline = time.monotonic() + READY_GRACE
        self._install_signals()
        self._fetch_wake_r, self._fetch_wake_w = socket.socketpair()
        self._fetch_wake_r.setblocking(False)
        self.selector.register(self._fetch_wake_r, selectors.EVENT_READ, self._on_fetched)
        self._open_netlink()
        self._open_watch()
        log.info("started (metadata %s, protocol %d, resync every %gs)",
                 effective_source(self.config.metadata), self.config.protocol,
                 self.config.resync_interval)
        try:
            while not self.stopping:
                self._wait()
                if self.stopping:
                    break
                self._tick(time.monotonic())
        finally:
            self.notifier.send(STOPPING=1, STATUS="stopping; network configuration left in place")
            self._close()
        log.info("stopped; network configuration left in place")
        return 0

    def _wait(self) -> None:
        abandon = self.fetch_started + FETCH_ABANDON if self.fetching is not None else None
        ready = self.ready_deadline if not self.ready else None
        deadlines = [d for d in (self.due, self.next_resync, self.next_watchdog, self.next_fetch,
                                 abandon, ready) if d is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic())
        for key, _ in self.selector.select(timeout):
            key.data()

    def _tick(self, now: float) -> None:
        if self.next_watchdog is not None and now >= self.next_watchdog:
            if not self._fetch_stuck(now):
                self.notifier.send(WATCHDOG=1)
            self.next_watchdog = now + self.watchdog
        if self.fetching is not None and now - self.fetch_started >= FETCH_ABANDON:
            self._abandon_fetch()
        if self.next_fetch is not None and now >= self.next_fetch:
            self.next_fetch = None
            self._want_fetch("new NIC not listed yet" if self.unknown_nics else "metadata poll",
                             gap=False)
        if not self.ready and self.ready_deadline is not None and now >= self.ready_deadline \
                and self.metadata is None:
            # Boot must not wait on the metadata service: say so, keep trying.
            self.ready = True
            status = f"waiting for metadata: {self.waiting_reason}"[:200]
            self.notifier.send(READY=1, STATUS=status)
            log.warning("ready without metadata (%s); still trying", self.waiting_reason)
        if now >= self.next_resync:
            if self.nl is not None:
                self.nl.resync()  # read the kernel afresh, not through notifications
            # A file is cheap to re-read; the service is polled on its own clock.
            self.reload_metadata = self.reload_metadata or not is_service(self.config.metadata)
            self._schedule(0, "periodic resync")
        if self.due is not None and now >= self.due:
            self.reconcile_once()
            if self.nl is not None and self.nl.pending:
                self._on_netlink()  # notifications read while verifying

    def _close(self) -> None:
        for closable in (self.nl, self.watch):
            if closable is not None:
                try:
                    closable.close()
                except OSError:
                    pass
        self.selector.close()

    # -- triggers ------------------------------------------------------------

    def _schedule(self, delay: float, reason: str) -> None:
        self.reasons.add(reason)
        at = time.monotonic() + delay
        if self._fighting():
            at = max(at, self.last_reconcile + FIGHT_GAP)
        self.due = at if self.due is None else min(self.due, at)

    def _fighting(self) -> bool:
        """Another tool keeps undoing our changes: slow down, don't spin."""
        now = time.monotonic()
        while self.repairs and self.repairs[0] < now - FIGHT_WINDOW:
            self.repairs.popleft()
        return len(self.repairs) >= FIGHT_REPAIRS

    def _open_netlink(self) -> None:
        """A netlink session following notifications; they wake the loop."""
        self.nl = Netlink(self.config.protocol, follow=True)
        self.selector.register(self.nl, selectors.EVENT_READ, self._on_netlink)

    def _on_netlink(self) -> None:
        try:
            events = self.nl.drain()
        except OSError as e:
            log.warning("netlink event socket failed (%s); reopening and resyncing", e)
            self._reopen_netlink()
            self._schedule(0, "netlink socket reopened")
            return
        reasons = {reason for event in events if (reason := self._relevance(event))}
        for reason in reasons:
            self._schedule(DEBOUNCE, reason)

    def _relevance(self, event: Event) -> str | None:
        """Why this event matters, or None if it concerns nothing of ours."""
        if event.kind == "overflow":
            self.link_states.clear()
            return "netlink events lost"
        if event.port and self.nl is not None and event.port == self.nl.port:
            # The echo of this daemon's own change: the pass that made it
            # verified it by observing the kernel afterwards.
            return None
        if event.kind == "link":
            macs = {eni.mac for eni in self.metadata.secondary_enis} if self.metadata else set()
            if event.mac in macs or event.index in self.managed_indexes:
                if event.state is not None and self.link_states.get(event.index) == event.state:
                    return None
                if event.state is None:
                    self.link_states.pop(event.index, None)
                else:
                    self.link_states[event.index] = event.state
                return "link event"
            if event.mac and is_service(self.config.metadata):
                self._unknown_nic(event)
            return None
        if event.protocol == self.config.protocol:
            return f"{event.kind} event"
        if event.kind == "address" and event.index in self.managed_indexes \
                and not event.link_scope:  # fe80::: the kernel's, never planned
            return "address event"
        if event.table is not None and event.table in self.managed_tables:
            return f"{event.kind} event"
        return None

    def _unknown_nic(self, event: Event) -> None:
        """A NIC the metadata does not list: likely an ENI just attached or
        moved here, which the service lists now or soon. Ask now, not at the
        poll, and keep asking (a burst) until it is listed."""
        if event.state is None:  # gone
            self.unknown_nics.pop(event.mac, None)
            self.other_nics.discard(event.mac)
            return
        if event.mac in self.unknown_nics or event.mac in self.other_nics:
            return  # asked already (its burst may be running)
        listed = self.metadata.listed_macs if self.metadata else frozenset()
        if event.mac in listed or not self._may_be_an_eni(event):
            # Not an ENI by its MAC, or ignored: one polite fetch, in case.
            self.other_nics.add(event.mac)
            self._want_fetch("unknown NIC appeared")
            return
        self.unknown_nics[event.mac] = time.monotonic()
        self.burst_delay = BURST_FIRST
        self._want_fetch("unknown NIC appeared", gap=False)

    def _may_be_an_eni(self, event: Event) -> bool:
        """A globally administered unicast MAC (veths, bridges and tunnels get
        random locally administered ones) on a NIC the config does not ignore."""
        try:
            first = int(event.mac.split(":")[0], 16)
        except ValueError:
            return False
        if first & 0x03 or event.mac in self.config.ignore_macs:
            return False
        name = event.state[0] if event.state else None
        return not (name and any(fnmatch.fnmatchcase(name, pattern)
                                 for pattern in self.config.ignore_interfaces))

    def _burst_next(self, now: float) -> None:
        """After a fetch: the next one of the burst, while a new NIC is unlisted."""
        listed = self.metadata.listed_macs if self.metadata else frozenset()
        for mac, since in list(self.unknown_nics.items()):
            if mac in listed or now - since > BURST_FOR:
                del self.unknown_nics[mac]
        if self.unknown_nics:
            at = now + self.burst_delay
            self.next_fetch = at if self.next_fetch is None else min(self.next_fetch, at)
            self.burst_delay = min(BURST_MAX, self.burst_delay * 2)

    def _open_watch(self) -> None:
        if self.watch is not None:
            self.selector.unregister(self.watch)
            self.watch.close()
            self.watch = None
        source = self.config.metadata
        if is_service(source):
            return
        try:
            self.watch = FileWatch(source)
        except OSError as e:
            log.warning("cannot watch %s (%s); relying on the periodic resync", source, e)
            return
        self.selector.register(self.watch, selectors.EVENT_READ, self._on_file)

    def _on_file(self) -> None:
        if self.watch.changed():
            self.reload_metadata = True
            self._schedule(DEBOUNCE, "metadata file changed")

    def _install_signals(self) -> None:
        self._signal_r, signal_w = socket.socketpair()
        self._signal_r.setblocking(False)
        signal_w.setblocking(False)
        self._signal_w = signal_w  # keep it alive
        signal.set_wakeup_fd(signal_w.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda *_: None)  # the wakeup fd carries the number
        self.selector.register(self._signal_r, selectors.EVENT_READ, self._on_signal)

    def _on_signal(self) -> None:
        try:
            received = self._signal_r.recv(64)
        except BlockingIOError:
            return
        for signum in received:
            if signum in (signal.SIGTERM, signal.SIGINT):
                log.info("%s received: exiting, network left configured",
                         signal.Signals(signum).name)
                self.stopping = True
            elif signum == signal.SIGHUP:
                self._reload_config()

    def _reload_config(self) -> None:
        try:
            config = load_config(self.config_path, self.overrides)
        except AgentError as e:
            log.error("SIGHUP: %s; keeping the running config", e.message)
            return
        if config.protocol != self.config.protocol:
            log.error("SIGHUP: protocol cannot change while running (it marks what eni-agent "
                      "owns); keeping %d. Restart after `eni-agent cleanup`.", self.config.protocol)
            config = config.replace(protocol=self.config.protocol)
        source_changed = config.metadata != self.config.metadata
        self.config = config
        logging.getLogger("eni_agent").setLevel(config.log_level.upper())
        if self.metadata is not None:
            keep_others_off(self.config, self.metadata)  # the settings may have changed
        if source_changed:
            self._open_watch()
        log.info("SIGHUP: config and metadata reloaded")
        self.reload_metadata = True
        self._schedule(0, "SIGHUP")

    # -- reconcile -------------------------------------------------------------

    def reconcile_once(self) -> None:
        triggers = set(self.reasons)
        reasons = ", ".join(sorted(triggers))
        self.reasons.clear()
        self.due = None
        now = time.monotonic()
        self.last_reconcile = now
        self.next_resync = now + self.config.resync_interval
        service = is_service(self.config.metadata)
        if self.reload_metadata:
            self.reload_metadata = False
            if service:
                # meanwhile, repair with the last good document
                self._want_fetch(", ".join(sorted(triggers)), gap=False)
            else:
                self._load_metadata()
        if self.metadata is None:
            if not service:  # a fetch in flight or scheduled brings the first document
                self._retry("no valid metadata yet")
            return
        try:
            with apply_lock(timeout=LOCK_WAIT):
                report = reconcile(self.nl, self.metadata, self.config)
        except Locked:
            log.debug("another eni-agent is applying changes; retrying shortly")
            self._schedule(LOCK_RETRY, "lock held")
            return
        except AgentError as e:
            log.error("%s", e.message)
            self._retry(e.message)
            return
        except Exception as e:  # netlink or socket trouble: reopen, resync, never die
            log.error("reconcile failed (%s: %s); reopening netlink and retrying",
                      type(e).__name__, one_line(e))
            self._reopen_netlink()
            self._retry("netlink error")
            return
        self._log_report(report, reasons)
        self.notices.log(self.config, report)
        self._remember(report)
        if any(eni.state is EniState.PENDING and eni.link for eni in report.enis):
            # udev writes no netlink event when it is done: look again shortly
            # (bounded: the adapter stops waiting for udev after 10 s).
            self._schedule(UDEV_RECHECK, "udev check of a new NIC")
        changed = any(eni.changes for eni in report.enis) or report.other_changes
        if changed and triggers <= DRIFT_REASONS:
            self.repairs.append(now)
            if self._fighting():
                log.warning("state keeps being undone (%d repairs in %gs): another tool is "
                            "fighting over these NICs; slowing down", len(self.repairs),
                            FIGHT_WINDOW)
        if report.settled:
            # Everything the agent can do is done. ENIs in conflict or
            # ambiguous need an operator; holding READY (and every unit
            # ordered after network-online.target) for them helps nobody.
            # Their tables are watched, so fixing the cause re-triggers.
            self.failures = 0
            if not self.ready:
                self.ready = True
                self.notifier.send(READY=1, STATUS=_summary(report))
                log.info("ready: %s", _summary(report))
                return
        else:
            self._retry("not converged", quiet=True)
        self.notifier.send(STATUS=_summary(report))

    def _load_metadata(self) -> None:
        """A file source: read it now (it is local and small)."""
        try:
            metadata = load_metadata(self.config.metadata)
        except AgentError as e:
            self._metadata_failed(e)
            return
        self._accept_metadata(metadata)

    def _metadata_failed(self, error: AgentError) -> None:
        kept = "keeping the last good document" if self.metadata else "nothing applied yet"
        log.warning("%s; %s", error.message, kept)
        self.waiting_reason = error.message
        if self.metadata is None:
            self.notifier.send(STATUS=f"waiting for metadata: {error.message}"[:200])

    def _accept_metadata(self, metadata: Metadata) -> bool:
        if metadata == self.metadata:
            return False
        log.info("metadata: %d secondary ENI(s) listed", len(metadata.secondary_enis))
        keep_others_off(self.config, metadata)
        self.metadata = metadata
        return True

    def _want_fetch(self, reason: str, gap: bool = True) -> None:
        """Fetch from the service soon: now, or when the polite gap since the
        last fetch ends, or right after the fetch in flight (which may have
        asked before the change we want to see)."""
        self.fetch_reasons.add(reason)
        if self.fetching is not None:
            self.fetch_again = True
            return
        wait = self.last_fetch + FETCH_GAP - time.monotonic() if gap else 0
        if wait > 0:
            at = time.monotonic() + wait
            self.next_fetch = at if self.next_fetch is None else min(self.next_fetch, at)
            return
        self.next_fetch = None
        self.last_fetch = self.fetch_started = time.monotonic()
        self.fetch_generation += 1
        generation = self.fetch_generation
        source = self.config.metadata

        def fetch() -> None:
            try:
                result: Metadata | AgentError = load_metadata(source)
            except AgentError as e:
                result = e
            except Exception as e:  # a bug in a reader must not kill the thread silently
                result = AgentError(f"metadata fetch failed: {type(e).__name__}: {e}")
            self._fetched.put((generation, result))
            try:
                self._fetch_wake_w.send(b"\0")
            except OSError:
                pass

        self.fetching = threading.Thread(target=fetch, name="metadata-fetch", daemon=True)
        self.fetching.start()

    def _on_fetched(self) -> None:
        try:
            self._fetch_wake_r.recv(64)
        except BlockingIOError:
            pass
        while not self._fetched.empty():
            generation, result = self._fetched.get()
            if generation != self.fetch_generation:
                continue  # an abandoned fetch finishing late: its answer is stale
            self.fetching = None
            now = time.monotonic()
            if isinstance(result, AgentError):
                self.fetch_failures += 1
                self._metadata_failed(result)
                self.next_fetch = now + min(FETCH_RETRY, RETRY_MIN * 2 ** self.fetch_failures)
            else:
                self.fetch_failures = 0
                self.next_fetch = now + self.config.metadata_interval * random.uniform(0.9, 1.1)
                if self._accept_metadata(self._hold_unlisted(result, now)) or not self.ready:
                    why = ", ".join(sorted(self.fetch_reasons)) or "poll"
                    self._schedule(0, f"metadata fetched after: {why}")
            self._burst_next(now)
            self.fetch_reasons.clear()
        if self.fetch_again and self.fetching is None:
            self.fetch_again = False
            self._want_fetch("a change during the last fetch", gap=False)

    def _hold_unlisted(self, metadata: Metadata, now: float) -> Metadata:
        """Keep, for one more fetch, a listed ENI this answer leaves out while
        its NIC is still attached: one listing that misses an ENI must not
        tear it down (the next fetch, soon, decides)."""
        if self.metadata is None:
            return metadata
        listed = metadata.listed_macs
        attached = {state[1] for state in self.link_states.values()}
        held = tuple(eni for eni in self.metadata.secondary_enis
                     if eni.mac not in listed and eni.mac in attached
                     and eni.mac not in self.unlisted_once)
        self.unlisted_once = {eni.mac for eni in held}
        if not held:
            return metadata
        for eni in held:
            log.warning("%s: no longer listed by the metadata service while its NIC is "
                        "attached; kept until the next fetch agrees", eni.name)
        at = now + FETCH_GAP
        self.next_fetch = at if self.next_fetch is None else min(self.next_fetch, at)
        return metadata._replace(enis=tuple(sorted(metadata.enis + held,
                                                   key=lambda eni: eni.mac)))

    def _abandon_fetch(self) -> None:
        """The fetch thread outlived the client's own deadline: leave it, and
        start the next fetch on a fresh client."""
        thread, started = self.fetching, self.fetch_started
        self.abandoned.append((thread, started))
        self.fetching = None
        self.fetch_generation += 1  # its answer, if it ever comes, is ignored
        forget_client(self.config.metadata)
        self.fetch_failures += 1
        self._metadata_failed(MetadataUnavailable(
            f"metadata service {effective_source(self.config.metadata)}: a fetch did not end "
            f"within {FETCH_ABANDON:g}s; abandoned it"))
        self._want_fetch("the last fetch was abandoned", gap=False)

    def _fetch_stuck(self, now: float) -> bool:
        """A fetch thread stuck for good: stop feeding the watchdog."""
        self.abandoned = [(t, started) for t, started in self.abandoned if t.is_alive()]
        stuck = [started for _, started in self.abandoned if now - started > FETCH_STUCK]
        if stuck and not self.stuck_logged:
            log.error("a metadata fetch thread has been stuck for %.0fs; no longer feeding the "
                      "systemd watchdog", now - min(stuck))
        self.stuck_logged = bool(stuck)
        return bool(stuck)

    def _retry(self, why: str, quiet: bool = False) -> None:
        delay = min(RETRY_MAX, RETRY_MIN * 2 ** self.failures) * random.uniform(0.8, 1.2)
        self.failures += 1
        if not quiet:
            log.info("retrying in %.1fs (%s)", delay, why)
        self.reload_metadata = self.reload_metadata or self.metadata is None
        self._schedule(delay, f"retry: {why}")

    def _reopen_netlink(self) -> None:
        if self.nl is not None:
            try:
                self.selector.unregister(self.nl)
                self.nl.close()
            except Exception:  # already broken
                pass
            self.nl = None
        self.link_states.clear()
        try:
            self._open_netlink()
        except Exception as e:
            log.error("cannot reopen netlink: %s", e)

    def _remember(self, report: Report) -> None:
        self.link_states = {link.index: link_state(link) for link in report.links}
        self.managed_indexes = {eni.ifindex for eni in report.enis if eni.ifindex is not None}
        self.managed_tables = {eni.table for eni in report.enis if eni.table is not None}

    def _log_report(self, report: Report, reasons: str) -> None:
        for eni in report.enis:
            where = f"{eni.label}" + (f" {eni.link}" if eni.link else "")
            for change in eni.changes:
                log.info("%s: %s (%s)", where, change, reasons)
            errors = tuple(eni.errors)
            if errors != self.eni_errors.get(eni.mac, ()):  # once per new problem, not per pass
                for error in errors:
                    log.warning("%s: %s", where, error)
            self.eni_errors[eni.mac] = errors
            previous = self.eni_states.get(eni.mac)
            steady = eni.state if eni.state not in SETTLED else "ok"
            if steady != previous and steady != "ok":
                log.info("%s: %s%s", where, eni.state, f" ({eni.reason})" if eni.reason else "")
            self.eni_states[eni.mac] = steady
        for change in report.other_changes:
            log.info("%s (ENI detached or no longer listed; %s)", change, reasons)
        for change in report.host_changes:
            log.info("%s (host-wide; %s)", change, reasons)
        for error in report.errors:
            log.warning("%s", error)
        for warning in report.warnings:
            if warning not in self.host_warnings_logged:  # once per daemon
                log.warning("%s", warning)
        self.host_warnings_logged.update(report.warnings)


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


def _summary(report: Report) -> str:
    parts = report.tally({EniState.CONFIGURED: "in sync", EniState.IN_SYNC: "in sync"})
    verdict = "converged" if report.converged else "NOT converged"
    return f"{verdict}: {parts} (pid {os.getpid()})"
