"""Reading the files that decide the host's routing, refusing loose ones.

Like sshd's StrictModes for `authorized_keys`: a config or metadata file that a
user other than root (or the agent's own user) could change is refused. That
covers the file itself, every symlink met on the way to it (its own owner: in
a sticky directory such as /tmp the owner of a link can replace it), and
every directory the path runs through, both as given and as resolved: a user
who can write any of them can swap the file. A world-writable directory with
the sticky bit (/tmp) protects files its user does not own, so it is accepted.

Only a regular file is read: a FIFO would block the reader forever, and a
device can do anything on open, so neither is opened for reading.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from eni_agent.errors import InvalidInput, PermissionDenied

MAX_FILE_BYTES = 1 << 20
MAX_SYMLINKS = 40  # the kernel's own limit (ELOOP)

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


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
    links, resolved = _resolve(os.path.abspath(path))
    for link, lst in links:
        if lst.st_uid not in trusted:
            raise PermissionDenied(f"refusing {what} {path}: symlink {link} is owned by uid "
                                   f"{lst.st_uid}, not root")
    given = Path(os.path.abspath(path)).parent
    directories = [given, *given.parents, *(Path(resolved).parent, *Path(resolved).parents)]
    for link, _ in links:  # the directory holding each link, and those above it
        directories += [Path(link).parent, *Path(link).parents]
    for directory in dict.fromkeys(directories):
        dst = os.stat(directory)
        loose = dst.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not dst.st_mode & stat.S_ISVTX
        if dst.st_uid not in trusted or loose:
            raise PermissionDenied(
                f"refusing {what} {path}: its directory {directory} can be changed by other users"
            )


def _resolve(path: str) -> tuple[list[tuple[str, os.stat_result]], str]:
    """([(symlink, its lstat)] met while resolving the absolute `path`, the
    resolved path), following links as the kernel does."""
    links: list[tuple[str, os.stat_result]] = []

    def walk(path: str, resolved: str) -> str:
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                resolved = os.path.dirname(resolved)
                continue
            candidate = os.path.join(resolved, part)
            lst = os.lstat(candidate)
            if not stat.S_ISLNK(lst.st_mode):
                resolved = candidate
                continue
            if len(links) >= MAX_SYMLINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            links.append((candidate, lst))
            target = os.readlink(candidate)
            resolved = walk(target, "/" if target.startswith("/") else resolved)
        return resolved

    return links, walk(path, "/")


def read_trusted(path: Path, what: str) -> bytes:
    """Read a small regular file after checking its permissions.

    Raises OSError for a missing or unreadable file (the caller decides what
    that means), `InvalidInput` for something that is not a regular file or
    is larger than MAX_FILE_BYTES (read whole or not at all), and
    `PermissionDenied` for a loose one or one this user may not read.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # never open a FIFO or a device
            _refuse_kind(path, what, os.stat(path))
        # O_NONBLOCK: should it become a FIFO after that stat, open() still
        # returns at once; fstat below then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except PermissionError as e:
        raise PermissionDenied(f"{what} {path}: cannot read: {e.strerror} "
                               "(not root?)") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            _refuse_kind(path, what, st)
        check_not_loose(path, what, st)
        data = f.read(MAX_FILE_BYTES + 1)  # (+1: a file grown since the fstat shows it)
    if max(st.st_size, len(data)) > MAX_FILE_BYTES:
        # Never part of it: a setting past the cut would be silently dropped.
        raise InvalidInput(f"invalid {what} {path}: larger than {MAX_FILE_BYTES} bytes "
                           f"({max(st.st_size, len(data))}); refusing it rather than reading "
                           "part of it")
    return data


def _refuse_kind(path: Path, what: str, st: os.stat_result) -> None:
    kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a file")
    raise InvalidInput(f"{what} {path}: cannot read: is {kind}, not a regular file")
