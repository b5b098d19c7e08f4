"""The daemon's metadata: the document in use, and how the next one comes.

A file is read when it changes (the daemon's watch says so); the service is
fetched on a worker thread (`fetcher`) when the feed (`feed`) decides. A bad
or unreadable document never replaces the last good one; its warning is
summarized (a file written in place fails on every write).
"""

from __future__ import annotations

import selectors
import time

from eni_agent.coexist import keep_others_off
from eni_agent.daemon_ops import Operations
from eni_agent.config import Config
from eni_agent.daemon_log import Repeats, log, warn_summarized
from eni_agent.errors import AgentError, MetadataUnavailable
from eni_agent.feed import FETCH_ABANDON, Action, MetadataFeed
from eni_agent.fetcher import FetchWorker
from eni_agent.model import Metadata
from eni_agent.notify import Notifier
from eni_agent.relevance import may_be_an_eni
from eni_agent.sources import (DEFAULT_SOURCE, effective_source, forget_client, is_service,
                               load_metadata)
from eni_agent.watch import FileWatch


class MetadataSupply:
    def __init__(self, config: Config, notifier: Notifier, ops: Operations | None = None):
        self.config = config
        self.notifier = notifier
        self.ops = ops  # told of every read's outcome (the state file, the metrics)
        self.metadata: Metadata | None = None
        self.feed = MetadataFeed(config.metadata_interval)
        self.fetcher = FetchWorker(load_metadata)
        self.repeats = Repeats()
        self.waiting_reason = "no answer yet"
        self.stuck_logged = False
        self.watch: FileWatch | None = None

    @property
    def service(self) -> bool:
        return is_service(self.config.metadata)

    @property
    def listed_macs(self) -> frozenset[str]:
        return self.metadata.listed_macs if self.metadata else frozenset()

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.feed.interval = config.metadata_interval
        if self.metadata is not None:
            keep_others_off(config, self.metadata)  # the settings may have changed

    def open_watch(self, selector: selectors.BaseSelector, on_change) -> None:
        """Watch a file source (none for the service), `on_change` its callback."""
        if self.watch is not None:
            selector.unregister(self.watch)
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
        selector.register(self.watch, selectors.EVENT_READ, on_change)

    def load_file(self, now: float) -> None:
        """A file source: read it now (it is local and small)."""
        try:
            metadata = load_metadata(self.config.metadata)
        except AgentError as e:
            self._read(e, time.monotonic() - now, None)
            self.failed(e, now)
            return
        self._read(None, time.monotonic() - now, None)
        self.accept(metadata)

    def _read(self, error: AgentError | None, duration: float | None, next_in: float | None,
              kind: str | None = None) -> None:
        if self.ops is not None:
            self.ops.fetch_done(error, duration, next_in, kind)

    def step(self, now: float) -> None:
        """Do what the feed decides for `now`: abandon a hung fetch, start one."""
        action = self.feed.next_action(now)
        if action is Action.ABANDON:
            self.fetcher.abandon()
            forget_client(self.config.metadata)  # the next fetch starts on a fresh client
            duration = now - self.feed.in_flight_since
            self.feed.abandoned(now)
            error = MetadataUnavailable(
                f"metadata service {effective_source(self.config.metadata)}: a fetch did not "
                f"end within {FETCH_ABANDON:g}s; abandoned it")
            self._read(error, duration, 0, kind="timeout")
            self.failed(error, now)
            action = self.feed.next_action(now)
        if action is Action.FETCH:
            self.feed.started(now)
            self.fetcher.start(self.config.metadata, now)

    def nics_changed(self, now: float, appeared, gone) -> None:
        """NICs the metadata does not know appeared (link events) or went away
        (MACs): a NIC that may be an ENI starts a burst of fetches."""
        if not self.service:
            return
        on_ecs = effective_source(self.config.metadata) == DEFAULT_SOURCE
        for event in appeared:
            if may_be_an_eni(event, self.config, on_ecs, self.config.burst_for_virtual_links):
                self.feed.nic_appeared(now, event.mac, self.listed_macs)
        for mac in gone:
            self.feed.nic_gone(mac)
        self.step(now)

    def fetch_finished(self, now: float, answer: Metadata | AgentError,
                       attached: frozenset[str]) -> tuple[bool, str]:
        """A fetch of the service answered: the one place its outcome is
        taken. Returns (whether the document in use changed, why it was
        fetched)."""
        started = self.feed.in_flight_since
        duration = None if started is None else now - started
        if isinstance(answer, AgentError):
            why = self.feed.failed(now, self.listed_macs)
            self._read(answer, duration, self._next_in(now))
            self.failed(answer, now)
            return False, why
        fetched = self.feed.fetched(now, answer, self.metadata, attached)
        self._read(None, duration, self._next_in(now))
        for eni in fetched.held:
            log.warning("%s: no longer listed by the metadata service while its NIC is "
                        "attached; kept until the next fetch agrees", eni.name)
        return self.accept(fetched.metadata), fetched.why

    def _next_in(self, now: float) -> float | None:
        at = self.feed.wake_at()
        return None if at is None else max(0.0, at - now)

    def failed(self, error: AgentError, now: float) -> None:
        kept = "keeping the last good document" if self.metadata else "nothing applied yet"
        # A file written in place fails on every write: summarized, not per write.
        # Keyed by who must act (invalid or unavailable), not by the text: a
        # file written in place fails at another offset, with another JSON
        # error, at every write, and loads in between.
        key = type(error).__name__
        warn_summarized(self.repeats, key, now, f"{error.message}; {kept}")
        self.waiting_reason = error.message
        if self.metadata is None:
            self.notifier.send(STATUS=f"waiting for metadata: {error.message}"[:200])

    def accept(self, metadata: Metadata) -> bool:
        if metadata == self.metadata:
            return False
        log.info("metadata: %d secondary ENI(s) listed", len(metadata.secondary_enis))
        keep_others_off(self.config, metadata)
        self.metadata = metadata
        return True

    def fetch_stuck(self, now: float) -> bool:
        """A fetch thread stuck for good: stop feeding the watchdog."""
        since = self.fetcher.stuck_since(now)
        if since is not None and not self.stuck_logged:
            log.error("a metadata fetch thread has been stuck for %.0fs; no longer feeding the "
                      "systemd watchdog", now - since)
        self.stuck_logged = since is not None
        return self.stuck_logged
