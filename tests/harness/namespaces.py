"""Network namespaces: creating and deleting them (``eni-t-<tag>-<pid>-<role>``),
sweeping those of crashed runs, and running Python code inside one (setns(2)
in a helper thread, so sockets can be made in any namespace)."""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import os
import re
import secrets
import threading
from typing import Any, Callable, TypeVar

from .commands import ip, run

log = logging.getLogger(__name__)

#: Every namespace created by this module starts with this prefix.
PREFIX = "eni-t-"

_NETNS_DIR = "/run/netns"
_CLONE_NEWNET = 0x40000000
_NAME_RE = re.compile(r"^eni-t-[0-9a-f]+-(?P<pid>\d+)-[a-z]+$")

# Namespaces created by this process and not yet deleted (atexit fallback).
_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()

T = TypeVar("T")


def list_namespaces() -> list[str]:
    """Names of all network namespaces (``ip netns list``)."""
    out = run(["ip", "-j", "netns", "list"]).stdout.strip()
    return [entry["name"] for entry in json.loads(out)] if out else []


def create_namespace(role: str, tag: str | None = None) -> str:
    """Create a namespace ``eni-t-<tag>-<pid>-<role>`` (``lo`` up) and return its name."""
    tag = tag or secrets.token_hex(3)
    name = f"{PREFIX}{tag}-{os.getpid()}-{role}"
    run(["ip", "netns", "add", name])
    with _LIVE_LOCK:
        _LIVE.add(name)
    ip(name, "link", "set", "lo", "up")
    return name


def delete_namespace(name: str) -> None:
    """Delete namespace ``name`` (its veths go with it). Missing is fine."""
    cp = run(["ip", "netns", "delete", name], check=False)
    if cp.returncode != 0 and os.path.exists(os.path.join(_NETNS_DIR, name)):
        raise RuntimeError(f"cannot delete netns {name}: {cp.stderr.strip()}")
    with _LIVE_LOCK:
        _LIVE.discard(name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale_namespaces() -> list[str]:
    """Delete leftover ``eni-t-*`` namespaces from crashed earlier runs.

    A namespace is stale when the PID embedded in its name is no longer alive
    (or the name does not follow our pattern), so a concurrently running test
    session keeps its namespaces. Returns the deleted names.
    """
    deleted = []
    for name in list_namespaces():
        if not name.startswith(PREFIX):
            continue
        m = _NAME_RE.match(name)
        if m and _pid_alive(int(m["pid"])):
            continue
        try:
            delete_namespace(name)
            deleted.append(name)
        except RuntimeError as exc:  # pragma: no cover - best effort
            log.warning("%s", exc)
    return deleted


@atexit.register
def _delete_live_namespaces() -> None:
    """Last-resort cleanup if the process exits with topologies still alive."""
    for name in sorted(_LIVE):
        try:
            delete_namespace(name)
        except Exception:  # pragma: no cover - best effort at exit
            pass


# --------------------------------------------------------------------------
# setns(2) helpers
# --------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, _CLONE_NEWNET)
        return
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def in_netns(ns: str, fn: Callable[[], T]) -> T:
    """Call ``fn()`` in a helper thread that has joined namespace ``ns``.

    Sockets keep the namespace they were created in, so
    ``in_netns(ns, socket.socket)`` yields a socket living in ``ns`` that
    can be used from any thread. The calling thread's namespace is untouched.
    """
    result: dict[str, Any] = {}

    def worker() -> None:
        try:
            fd = os.open(os.path.join(_NETNS_DIR, ns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            result["value"] = fn()
        except BaseException as exc:  # re-raised in the caller
            result["error"] = exc

    thread = threading.Thread(target=worker, name=f"in-netns-{ns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]

