"""Logging that suits journald: one line per event; under journald, entries
sent natively with their fields (journal.py), or, without its socket, stderr
lines with no timestamps of our own (journald stamps them) and the level
carried as a syslog `<N>` prefix that journald turns into the priority."""

from __future__ import annotations

import logging
import os
import sys

from eni_agent.errors import printable

_SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                    logging.CRITICAL: 2}


class OneLine(logging.Formatter):
    """Every record on one line, with control characters escaped: an interface
    name or an ENI id from the metadata can hold them, and must not forge log
    lines or drive the terminal of whoever reads the log."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = printable(" ".join(record.message.splitlines()))
        return super().formatMessage(record)


class JournalFormatter(OneLine):
    def format(self, record: logging.LogRecord) -> str:
        priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{super().format(record)}"


def under_journald() -> bool:
    """True when stderr is connected to the journal (systemd sets JOURNAL_STREAM)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def setup_logging(level: str) -> None:
    from eni_agent.journal import JournalHandler, journal_available

    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    if under_journald() and journal_available():
        # Entries with fields (ENI_ID, MAC, IFNAME, EVENT): see journal.py.
        handler = JournalHandler()
        handler.setFormatter(OneLine("%(message)s"))
    elif under_journald():
        handler.setFormatter(JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(OneLine("%(asctime)s %(levelname)s %(message)s",
                                     "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)  # libraries (pyroute2, asyncio) speak only when it matters
    logging.getLogger("eni_agent").setLevel(level.upper())
