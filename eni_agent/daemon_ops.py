"""What the daemon publishes for operators (issue 19), behind the few calls
daemon.py makes: a pass's report, a metadata read's end, lost notifications,
and the STATUS= line; the state file is written from here when it changed,
the metrics file too but at most once a second (`publish_at`: when the daemon
must call `publish()` for a change held back by that limit)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable

from eni_agent.daemon_view import WRITE_GAP, DaemonView, netns_inode, state_path
from eni_agent.metrics import Publisher
from eni_agent.report import Report
from eni_agent.sources import effective_source

log = logging.getLogger("eni_agent.daemon")


class Operations:
    def __init__(self, config, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic):
        self.clock, self.monotonic = clock, monotonic
        self.view = DaemonView(os.getpid(), clock(), effective_source(config.metadata),
                               netns_inode())
        self.publisher = Publisher(state_path(), None, WRITE_GAP)
        self.configure(config)
        self.publish_at: float | None = None  # monotonic
        self.failures_logged: dict[str, str] = {}

    def configure(self, config) -> None:
        """(Re)read the settings that decide what is published (start, SIGHUP)."""
        self.view.source = effective_source(config.metadata)
        metrics = Path(config.metrics_file) if config.metrics_file else None
        if metrics != self.publisher.paths["metrics"]:
            self.publisher.paths["metrics"] = metrics
            self.publisher.written.pop("metrics", None)

    def pass_done(self, report: Report, triggers: set[str], duration: float,
                  repair: bool) -> None:
        self.view.pass_done(report, triggers, duration, repair, self.clock())
        self.publish()

    def fetch_done(self, error: BaseException | None, duration: float | None,
                   next_in: float | None, kind: str | None = None) -> None:
        """A metadata read ended; the next is due in `next_in` seconds (None: on change)."""
        now = self.clock()
        self.view.fetch_done(error, now, None if next_in is None else now + next_in,
                             duration, kind)
        self.publish()

    def notifications_lost(self) -> None:
        self.view.notifications_lost()
        self.publish()

    def status_line(self) -> str:
        return self.view.status_line(self.clock())

    def publish(self) -> None:
        delay = self.publisher.flush(self.view.document, self.clock())
        self.publish_at = None if delay is None else self.monotonic() + delay
        for kind, why in self.publisher.failed.items():
            if self.failures_logged.get(kind) != why:
                log.warning("cannot write the %s file %s", kind, why)
        self.failures_logged = dict(self.publisher.failed)
