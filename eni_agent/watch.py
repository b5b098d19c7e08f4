"""Wake up when a file changes: written in place, replaced by rename, or
reached through a symlink that is swapped.

inotify through ctypes (the standard library has no binding). The path is
resolved as the kernel resolves it, and the names on the way that decide what
it leads to are watched in their directories: each symlink met (a Kubernetes
ConfigMap's `name -> ..data/name` and the `..data -> ..2024_01_01_...` that
kubelet swaps by rename; a directory symlink swapped with `ln -sfn`), the
file itself, or the first name that does not exist yet. When one of them
changes, or a watched directory is removed or moved, the watches are set
again along the new chain. So an editor's or a config manager's
write-temp-then-rename, a symlink swap and a directory that appears,
disappears or is replaced are seen at once. Plain directories above are not
watched (a busy /tmp or /etc would wake the daemon at rest): a directory
above the file's own one renamed away is left to the periodic resync. A
file descriptor to select() on; no polling.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
import struct

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
_EVENT = struct.Struct("iIII")
_SELF = IN_DELETE_SELF | IN_MOVE_SELF
_MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
         | IN_DELETE | _SELF | IN_ONLYDIR | IN_DONT_FOLLOW)
MAX_SYMLINKS = 40  # the kernel's own limit (ELOOP)


def watched_names(path: str) -> tuple[list[tuple[str, str]], tuple[str, str]]:
    """([(directory, name)] whose change can change what the absolute `path`
    leads to, (directory, name) of the file it leads to), resolving symlinks
    as the kernel does: each symlink met, and the file itself. Resolution
    stops at the first name that does not exist (or is not a directory where
    one is needed): that name is watched for its arrival instead."""
    names: list[tuple[str, str]] = []
    links = 0

    def walk(path: str, resolved: str) -> str | None:
        nonlocal links
        parts = [p for p in path.split("/") if p not in ("", ".")]
        for part in parts:
            if part == "..":
                resolved = os.path.dirname(resolved)
                continue
            candidate = os.path.join(resolved, part)
            try:
                lst = os.lstat(candidate)
            except OSError as e:
                if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                    raise
                names.append((resolved, part))  # watch for its arrival
                return None
            if not stat.S_ISLNK(lst.st_mode):
                resolved = candidate
                continue
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            names.append((resolved, part))  # a symlink: swapped, it leads elsewhere
            target = os.readlink(candidate)
            resolved = walk(target, "/" if target.startswith("/") else resolved)
            if resolved is None:
                return None
        return resolved

    final = walk(path, "/")
    if final is not None and final != "/":
        names.append(os.path.split(final))
    return names, (os.path.split(final) if final is not None else ("", ""))


class FileWatch:
    """`changed()` says whether the watched file may have changed."""

    def __init__(self, path: str):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._add, self._rm = libc.inotify_add_watch, libc.inotify_rm_watch
        self.path = os.path.abspath(path)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.watches: dict[int, set[str]] = {}  # wd -> the names that matter in that directory
        self.target: tuple[str, str] = ("", "")  # (directory, name) of the file itself
        self.target_wd: int | None = None
        try:
            self._arm()
        except OSError:
            os.close(self.fd)
            raise

    def _arm(self) -> None:
        """Watch the directories of every name along the path as it resolves now."""
        for _ in range(MAX_SYMLINKS):
            names, self.target = watched_names(self.path)
            by_directory: dict[str, set[str]] = {}
            for directory, name in names:
                by_directory.setdefault(directory, set()).add(name)
            watches: dict[int, set[str]] = {}
            self.target_wd = None
            for directory, wanted in by_directory.items():
                wd = self._add(self.fd, directory.encode(), _MASK)
                if wd < 0:
                    err = ctypes.get_errno()
                    if err not in (errno.ENOENT, errno.ENOTDIR):
                        raise OSError(err, f"cannot watch {directory}: {os.strerror(err)}")
                    break  # changed while we looked: resolve again
                watches.setdefault(wd, set()).update(wanted)
                if directory == self.target[0]:
                    self.target_wd = wd
            else:
                self._keep_only(watches)
                return
        raise OSError(errno.ELOOP, f"cannot watch {self.path}: it keeps changing")

    def _keep_only(self, watches: dict[int, set[str]]) -> None:
        for wd in set(self.watches) - set(watches):
            self._rm(self.fd, wd)  # fails harmlessly if the kernel dropped it
        self.watches = watches

    def fileno(self) -> int:
        return self.fd

    def changed(self) -> bool:
        """Drain pending events; True if one may concern the watched file.

        The chain is watched anew after a change to a symlink or a directory
        along it: what the path leads to may have been replaced."""
        hit = rearm = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size: offset + _EVENT.size + length]
                offset += _EVENT.size + length
                name = name.rstrip(b"\0").decode(errors="replace")
                if mask & IN_Q_OVERFLOW or (wd in self.watches and mask & (_SELF | IN_IGNORED)):
                    hit = rearm = True  # lost events, or a directory on the way went away
                elif name in self.watches.get(wd, ()):
                    hit = True
                    # the file written in place leaves the chain as it is
                    rearm = rearm or not (wd == self.target_wd and name == self.target[1])
        if rearm:
            self._arm()
        return hit

    def close(self) -> None:
        os.close(self.fd)
