"""Signals as bytes on a socket the daemon's selector reads: the handler
does nothing, and Python's wake-up fd carries the signal numbers."""

from __future__ import annotations

import signal
import socket

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class SignalSocket:
    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        for end in (self._read, self._write):
            end.setblocking(False)
        signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        for signum in HANDLED:
            signal.signal(signum, lambda *_: None)  # the wake-up fd carries the number

    def fileno(self) -> int:
        return self._read.fileno()

    def received(self) -> list[signal.Signals]:
        try:
            data = self._read.recv(64)
        except BlockingIOError:
            return []
        return [signal.Signals(signum) for signum in data]
