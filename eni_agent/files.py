"""Reading the files that decide the host's routing, refusing loose ones.

Like sshd's StrictModes for `authorized_keys`: a config or metadata file that a
user other than root (or the agent's own user) could change is refused. That
covers the file itself and every directory above it, both along the path as
given (a symlink's own directory) and along the resolved path: a user who can
write any of them can swap the file. A world-writable directory with the
sticky bit (/tmp) protects files its user does not own, so it is accepted.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from eni_agent.errors import PermissionDenied

MAX_FILE_BYTES = 1 << 20


def check_not_loose(path: Path, what: str, st: os.stat_result | None = None) -> None:
    """Raise `PermissionDenied` if anyone but root or us could change `path`
    (`st`: the stat of the file as opened, so the check is of what is read)."""
    trusted = {0, os.geteuid()}
    st = st or os.stat(path)
    if st.st_uid not in trusted:
        raise PermissionDenied(f"refusing {what} {path}: owned by uid {st.st_uid}, not root")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionDenied(
            f"refusing {what} {path}: writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}; chmod go-w)"
        )
    given = Path(os.path.abspath(path)).parent
    resolved = Path(os.path.realpath(path)).parent
    for directory in dict.fromkeys([given, *given.parents, resolved, *resolved.parents]):
        dst = os.stat(directory)
        loose = dst.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not dst.st_mode & stat.S_ISVTX
        if dst.st_uid not in trusted or loose:
            raise PermissionDenied(
                f"refusing {what} {path}: its directory {directory} can be changed by other users"
            )


def read_trusted(path: Path, what: str) -> bytes:
    """Read a small file after checking its permissions.

    Raises OSError for a missing or unreadable file (the caller decides what
    that means) and `PermissionDenied` for a loose one.
    """
    with open(path, "rb") as f:
        check_not_loose(path, what, os.fstat(f.fileno()))
        data = f.read(MAX_FILE_BYTES + 1)
    return data
