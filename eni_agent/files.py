"""Reading the files that decide the host's routing, refusing loose ones.

Like sshd with `authorized_keys`: a config or metadata file that a user other
than root (or the agent's own user) could write is refused, and so is one in a
directory such a user could write without the sticky bit (they could swap it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from eni_agent.errors import PermissionDenied

MAX_FILE_BYTES = 1 << 20


def check_not_loose(path: Path, what: str) -> None:
    """Raise `PermissionDenied` if anyone but root or us could change `path`."""
    trusted = {0, os.geteuid()}
    st = os.stat(path)
    if st.st_uid not in trusted:
        raise PermissionDenied(f"refusing {what} {path}: owned by uid {st.st_uid}, not root")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionDenied(
            f"refusing {what} {path}: writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}; chmod go-w)"
        )
    parent = Path(os.path.realpath(path)).parent
    dst = os.stat(parent)
    sticky = dst.st_mode & stat.S_ISVTX
    if dst.st_uid not in trusted or (dst.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky):
        raise PermissionDenied(
            f"refusing {what} {path}: its directory {parent} can be changed by other users"
        )


def read_trusted(path: Path, what: str) -> bytes:
    """Read a small file after checking its permissions.

    Raises OSError for a missing or unreadable file (the caller decides what
    that means) and `PermissionDenied` for a loose one.
    """
    with open(path, "rb") as f:
        check_not_loose(path, what)
        data = f.read(MAX_FILE_BYTES + 1)
    return data
