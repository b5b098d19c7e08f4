"""Log records as journal entries with fields: under journald, every line
about an ENI carries ENI_ID, MAC, IFNAME and EVENT, so that

    journalctl -u eni-agent ENI_ID=eni-bp1...     journalctl -u eni-agent EVENT=repaired

work. Sent with the journal's native protocol (systemd.journal-fields(7),
"Native Journal Protocol"): one datagram per entry on the AF_UNIX socket
/run/systemd/journal/socket, `KEY=value` lines, or `KEY`, a 64-bit
little-endian length and the raw value for a value holding a newline. It is
a sendto on a datagram socket, owned here like sd_notify in notify.py: the
package's private venv then needs no C extension (python3-systemd is not on
PyPI as a wheel, and Debian's build of it cannot go in the venv).

Elsewhere (a terminal, a file, a container) the lines stay plain text.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys

from eni_agent.errors import printable

JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "eni-agent"
# logging level -> syslog priority (journald's PRIORITY field)
SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                   logging.CRITICAL: 2}
# The record attributes (`extra=`) sent as fields, and their journal names.
FIELDS = {"eni_id": "ENI_ID", "mac": "MAC", "ifname": "IFNAME", "event": "EVENT"}
MAX_VALUE = 16384  # longer values are cut: a datagram must fit the socket's buffer


def eni_fields(eni, event: str) -> dict[str, str]:
    """The `extra=` of a log line about one ENI (an `EniReport`)."""
    return {"eni_id": eni.eni_id or "", "mac": eni.mac, "ifname": eni.link or "",
            "event": event}


def encode(fields: dict[str, str]) -> bytes:
    """One entry in the native protocol."""
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")[:MAX_VALUE]
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


def entry(record: logging.LogRecord, message: str) -> dict[str, str]:
    fields = {"MESSAGE": message, "PRIORITY": str(SYSLOG_PRIORITY.get(record.levelno, 6)),
              "SYSLOG_IDENTIFIER": IDENTIFIER, "CODE_FUNC": record.funcName,
              "CODE_LINE": str(record.lineno), "LOGGER": record.name}
    for attribute, key in FIELDS.items():
        value = getattr(record, attribute, None)
        if value:
            fields[key] = printable(value)
    return fields


class JournalHandler(logging.Handler):
    """Sends each record to journald; a record it cannot send goes to stderr."""

    def __init__(self, address: str = JOURNAL_SOCKET):
        super().__init__()
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.fallback = logging.StreamHandler(sys.stderr)

    def setFormatter(self, fmt: logging.Formatter | None) -> None:  # noqa: N802 (logging's)
        super().setFormatter(fmt)
        self.fallback.setFormatter(fmt)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            self.sock.sendto(encode(entry(record, message)), self.address)
        except OSError:
            self.fallback.emit(record)
        except Exception:  # noqa: BLE001 (logging's own policy for a broken handler)
            self.handleError(record)

    def close(self) -> None:
        self.sock.close()
        super().close()


def journal_available(address: str = JOURNAL_SOCKET) -> bool:
    return os.path.exists(address)
