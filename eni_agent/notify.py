"""The systemd notify protocol: one datagram to $NOTIFY_SOCKET per message.

Small enough to own (sd_notify(3) is a sendto on an AF_UNIX datagram socket);
it is a no-op when not started by systemd.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, address: str | None = None):
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # abstract namespace socket
            address = "\0" + address[1:]
        self.address = address or None
        self.sock: socket.socket | None = None
        if self.address:
            # Non-blocking: a receiver that stops reading must never stall the
            # daemon's repairs; a status update is dropped instead.
            self.sock = socket.socket(socket.AF_UNIX,
                                      socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)

    @property
    def enabled(self) -> bool:
        return self.sock is not None

    def send(self, **fields: str | int) -> bool:
        """send(READY=1, STATUS="...") -> True if delivered."""
        if self.sock is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            self.sock.sendto(message.encode("utf-8", "replace"), self.address)
        except OSError:  # BlockingIOError included: the receiver is not reading
            return False
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of WATCHDOG_USEC), if asked for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None
