"""Wake up when a file changes, written in place or replaced by rename.

inotify through ctypes (the standard library has no binding). The file's
directory is watched, so an editor's or a config manager's write-temp-then-
rename is seen like a write in place. If the directory does not exist yet, or
is deleted or replaced later, the nearest existing ancestor is watched until
the path reappears, then the watch moves back down. A file descriptor to
select() on; no polling.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
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
_EVENT = struct.Struct("iIII")
_SELF = IN_DELETE_SELF | IN_MOVE_SELF
_DIR_MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
             | IN_DELETE | _SELF | IN_ONLYDIR)
_ANCESTOR_MASK = IN_CREATE | IN_MOVED_TO | _SELF | IN_ONLYDIR


class FileWatch:
    """`changed()` says whether the watched file may have changed."""

    def __init__(self, path: str):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._add, self._rm = libc.inotify_add_watch, libc.inotify_rm_watch
        self.path = os.path.abspath(path)
        self.directory, self.name = os.path.split(self.path)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.wd: int | None = None  # on self.directory, or on an ancestor
        self.next_name: str | None = None  # set while watching an ancestor
        try:
            self._arm()
        except OSError:
            os.close(self.fd)
            raise

    def _arm(self) -> None:
        """Watch the file's directory, or its nearest existing ancestor."""
        if self.wd is not None:
            self._rm(self.fd, self.wd)  # fails harmlessly if the kernel dropped it
        directory, below = self.directory, None
        while True:
            wd = self._add(self.fd, directory.encode(),
                           _DIR_MASK if below is None else _ANCESTOR_MASK)
            if wd >= 0:
                self.wd, self.next_name = wd, below
                return
            err = ctypes.get_errno()
            if err not in (errno.ENOENT, errno.ENOTDIR) or directory == "/":
                raise OSError(err, f"cannot watch {directory}: {os.strerror(err)}")
            directory, below = os.path.split(directory)

    def fileno(self) -> int:
        return self.fd

    def changed(self) -> bool:
        """Drain pending events; True if one may concern the watched file."""
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
                if mask & IN_Q_OVERFLOW or (wd == self.wd and mask & (_SELF | IN_IGNORED)):
                    hit = rearm = True  # lost events, or our directory went away
                elif wd != self.wd:
                    continue  # a watch we already replaced
                elif self.next_name is None:
                    hit = hit or name == self.name
                elif name == self.next_name:
                    hit = rearm = True  # the path is coming back: move the watch down
        if rearm:
            self._arm()
            # Re-armed lower: a file created meanwhile would produce no event.
        return hit

    def close(self) -> None:
        os.close(self.fd)
