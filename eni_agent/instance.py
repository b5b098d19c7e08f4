"""One daemon per network namespace.

The daemon binds an abstract Unix socket (a name, not a file): the kernel
scopes abstract names to the network namespace, and frees the name when the
process holding it dies, however it dies. A second daemon in the same
namespace finds the name taken, connects, reads the first one's PID from the
connection's credentials (SO_PEERCRED) and stops with AlreadyRunning (exit
8). Daemons in different namespaces do not see each other's name. The apply
lock (`ENI_AGENT_LOCK`) is another thing: it orders one-shot commands and the
daemon's passes.
"""

from __future__ import annotations

import errno
import socket
import struct

from eni_agent.errors import AlreadyRunning

NAME = b"\0eni-agent/daemon"
_UCRED = struct.Struct("iII")  # pid, uid, gid


def claim() -> socket.socket:
    """The listening socket that holds the name for this namespace; keep it
    open (and accept on it) while the daemon runs."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind(NAME)
    except OSError as e:
        sock.close()
        if e.errno != errno.EADDRINUSE:
            raise
        pid = holder()
        who = f"pid {pid}" if pid else "its pid unknown"
        raise AlreadyRunning(f"daemon: another eni-agent daemon ({who}) already runs in this "
                             "network namespace") from None
    sock.listen(16)
    sock.setblocking(False)
    return sock


def holder() -> int | None:
    """The PID of the daemon holding the name, as this namespace numbers it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(NAME)
            pid, _, _ = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                      _UCRED.size))
        except OSError:
            return None
    return pid or None


def answer(sock: socket.socket) -> None:
    """Accept and close the connections of daemons asking who holds the name."""
    while True:
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        conn.close()
