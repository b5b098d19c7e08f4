"""Wake up when a file changes, written in place or replaced by rename.

inotify through ctypes (the standard library has no binding): the directory
is watched, so an editor's or a config manager's write-temp-then-rename is
seen just like a write in place. A file descriptor to select() on; no polling.
"""

from __future__ import annotations

import ctypes
import ctypes.util
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
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")
_DIR_MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
             | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF)


class FileWatch:
    """Watches the directories of some files; `changed()` says if any of them moved."""

    def __init__(self, paths: list[str]):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._add = libc.inotify_add_watch
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.names: dict[int, set[str]] = {}
        for path in paths:
            directory, name = os.path.split(os.path.abspath(path))
            wd = self._add(self.fd, directory.encode(), _DIR_MASK)
            if wd < 0:
                err = ctypes.get_errno()
                os.close(self.fd)
                raise OSError(err, f"cannot watch {directory}: {os.strerror(err)}")
            self.names.setdefault(wd, set()).add(name)

    def fileno(self) -> int:
        return self.fd

    def changed(self) -> bool:
        """Drain pending events; True if one concerns a watched file."""
        hit = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return hit
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size: offset + _EVENT.size + length]
                offset += _EVENT.size + length
                name = name.rstrip(b"\0").decode(errors="replace")
                if mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED):
                    hit = True
                elif name in self.names.get(wd, ()):
                    hit = True

    def close(self) -> None:
        os.close(self.fd)
