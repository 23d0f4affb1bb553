"""Being told when any process writes the log, instead of polling for it: on Linux an inotify
watch on the log's directory, read by the event loop, fires when the `-wal` file is written
(every commit writes it). Elsewhere, or when inotify cannot be had, `WalWrites.open` returns
None and followers poll, backing off while nothing arrives.

Why not poll: every timer wake-up of an event loop costs CPU (on this project's VMs, enough that
a 10 ms poll kept an idle follower at ~2% of a core: docs/performance.md#follower-wakeups); a
watched descriptor costs nothing until a write happens, and wakes the follower at once."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path

_IN_MODIFY = 0x00000002
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name

# Switched off by EVLOG_NO_INOTIFY=1 (or by tests) to run the polling fallback.
SUPPORTED = sys.platform.startswith("linux") and not os.environ.get("EVLOG_NO_INOTIFY")


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


class WalWrites:
    """Calls `on_write()` on the event loop whenever the log's `-wal` file is written."""

    def __init__(self, fd: int, names: set[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._fd = fd
        self._names = names
        self._loop = loop
        self._callbacks: list[Callable[[], None]] = []
        loop.add_reader(fd, self._readable)

    @classmethod
    def open(cls, db: Path, loop: asyncio.AbstractEventLoop) -> WalWrites | None:
        """A watch on `db`'s directory, or None where inotify is not available."""
        if not SUPPORTED:
            return None
        libc = _libc()
        if libc is None or not hasattr(libc, "inotify_init1"):
            return None
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None
        directory = os.fsencode(db.resolve().parent)
        if libc.inotify_add_watch(fd, directory, _IN_MODIFY | _IN_CREATE | _IN_MOVED_TO) < 0:
            os.close(fd)
            return None
        name = os.fsencode(db.name)
        return cls(fd, {name + b"-wal", name}, loop)

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._callbacks.remove(callback)

    def _readable(self) -> None:
        written = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                return
            if not data:
                break
            offset = 0
            while offset + _EVENT.size <= len(data):
                _wd, _mask, _cookie, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
                offset += _EVENT.size + length
                written = written or name in self._names
        if written:
            for callback in list(self._callbacks):
                callback()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)
