"""One writer at a time: `sync`, `cleanup` and the daemon take this lock
around every apply, so they never change the kernel at the same moment.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

from eni_agent.errors import Locked, PermissionDenied, RuntimePathUnusable

DEFAULT_LOCK_PATH = "/run/eni-agent/apply.lock"


def lock_path() -> str:
    """The lock's path: ENI_AGENT_LOCK (tests: a lock of their own), else
    DEFAULT_LOCK_PATH. The daemon's state file lives beside it."""
    return os.environ.get("ENI_AGENT_LOCK", DEFAULT_LOCK_PATH)


@contextlib.contextmanager
def apply_lock(path: str | None = None, timeout: float = 10.0) -> Iterator[None]:
    """Hold the lock, waiting up to `timeout` seconds, else raise `Locked`
    (`PermissionDenied` if this user may not take it: changing the kernel's
    routing needs root anyway; `RuntimePathUnusable` if its directory cannot
    be written)."""
    path = path or lock_path()
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except PermissionError as e:
        raise PermissionDenied(f"cannot take the lock {path}: {e.strerror}; changing the "
                               "routing needs root") from None
    except OSError as e:  # EROFS, ENOSPC, EDQUOT, ...: /run read-only or full
        raise RuntimePathUnusable.from_os_error(path, e) from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Locked(f"another eni-agent is applying changes (lock {path} held "
                                 f"for over {timeout:g}s); try again") from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)
