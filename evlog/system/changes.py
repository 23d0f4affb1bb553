"""Being told when a file is written instead of polling for it: on Linux an inotify watch on its
directory, read by the event loop. The log's followers learn of other processes' commits from
writes to the `-wal` file (every commit writes it); `evlog watch` learns of lines appended to the
files it follows. Elsewhere, or when inotify cannot be had, `open` returns None and callers
poll, backing off while nothing arrives.

Why not poll: every timer wake-up of an event loop costs CPU
(docs/performance.md#follower-wakeups); a watched descriptor costs nothing until a write
happens, and wakes the follower at once."""

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

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ISDIR = 0x40000000
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


class Inotify:
    """One inotify instance read by the event loop: `on_events([(wd, mask, name), ...])` is
    called with what the kernel queued, each (wd, mask, name) once per read (a run of writes
    to one file arrives as one)."""

    def __init__(
        self,
        fd: int,
        libc: ctypes.CDLL,
        loop: asyncio.AbstractEventLoop,
        on_events: Callable[[list[tuple[int, int, bytes]]], None],
    ) -> None:
        self._fd = fd
        self._libc = libc
        self._loop = loop
        self._on_events = on_events
        self._reading = True
        loop.add_reader(fd, self._readable)

    @classmethod
    def open(
        cls,
        loop: asyncio.AbstractEventLoop,
        on_events: Callable[[list[tuple[int, int, bytes]]], None],
    ) -> Inotify | None:
        """An instance with no watch yet, or None where inotify is not available."""
        if not SUPPORTED:
            return None
        libc = _libc()
        if libc is None or not hasattr(libc, "inotify_init1"):
            return None
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None
        return cls(fd, libc, loop, on_events)

    def add(self, path: Path, mask: int) -> int:
        """Watch `path` for `mask`; the watch descriptor, or -1 if the kernel refused (gone,
        not permitted, out of watches). A path watched already keeps its descriptor. Safe to
        call from any thread."""
        return int(self._libc.inotify_add_watch(self._fd, os.fsencode(path), mask))

    def remove(self, wd: int) -> None:
        self._libc.inotify_rm_watch(self._fd, wd)

    def pause(self) -> None:
        """Stop waking the event loop. The kernel keeps queueing (a run of writes to one file
        as one), so `resume` wakes the loop at once if any came meanwhile."""
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def resume(self) -> None:
        if not self._reading:
            self._loop.add_reader(self._fd, self._readable)
            self._reading = True

    def _readable(self) -> None:
        seen: dict[tuple[int, bytes], int] = {}
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
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
                offset += _EVENT.size + length
                seen[(wd, name)] = seen.get((wd, name), 0) | mask
        if seen:
            self._on_events([(wd, mask, name) for (wd, name), mask in seen.items()])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)


class DirectoryWrites:
    """Calls `on_write(paths)` on the event loop with the files written, made or moved into
    the watched directories (each path is the directory as added, joined with the name)."""

    def __init__(self, inotify: Inotify, on_write: Callable[[set[Path]], None]) -> None:
        self._inotify = inotify
        self._on_write = on_write
        self._dirs: dict[int, Path] = {}  # watch descriptor -> the directory as added

    @classmethod
    def open(
        cls, loop: asyncio.AbstractEventLoop, on_write: Callable[[set[Path]], None]
    ) -> DirectoryWrites | None:
        """An inotify instance with no watch yet, or None where inotify is not available."""
        holder: list[DirectoryWrites] = []
        inotify = Inotify.open(loop, lambda events: holder[0]._events(events))
        if inotify is None:
            return None
        holder.append(cls(inotify, on_write))
        return holder[0]

    def add(self, directory: Path) -> bool:
        """Watch `directory` too (again: no change); False if the kernel refused."""
        wd = self._inotify.add(directory, IN_MODIFY | IN_CREATE | IN_MOVED_TO)
        if wd < 0:
            return False
        self._dirs.setdefault(wd, directory)
        return True

    def pause(self) -> None:
        """Stop waking the event loop for writes (see Inotify.pause)."""
        self._inotify.pause()

    def resume(self) -> None:
        self._inotify.resume()

    def _events(self, events: list[tuple[int, int, bytes]]) -> None:
        # Paths made once per file, not per event: a busy log's WAL is written thousands of
        # times a second.
        written = {
            directory / os.fsdecode(name)
            for wd, _mask, name in events
            if name and (directory := self._dirs.get(wd)) is not None
        }
        if written:
            self._on_write(written)

    def close(self) -> None:
        self._inotify.close()


class WalWrites:
    """Calls `on_write()` on the event loop whenever the log's `-wal` file is written."""

    def __init__(self, db: Path) -> None:
        self._names = {db.name + "-wal", db.name}
        self._callbacks: list[Callable[[], None]] = []
        self._writes: DirectoryWrites | None = None

    @classmethod
    def open(cls, db: Path, loop: asyncio.AbstractEventLoop) -> WalWrites | None:
        """A watch on `db`'s directory, or None where inotify is not available."""
        watch = cls(db)
        writes = DirectoryWrites.open(loop, watch._written)
        if writes is None:
            return None
        if not writes.add(db.resolve().parent):
            writes.close()
            return None
        watch._writes = writes
        return watch

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._callbacks.remove(callback)

    def pause(self) -> None:
        """While nobody waits for a commit: writes stop waking the loop (DirectoryWrites.pause)."""
        if self._writes is not None:
            self._writes.pause()

    def resume(self) -> None:
        if self._writes is not None:
            self._writes.resume()

    def _written(self, paths: set[Path]) -> None:
        if any(p.name in self._names for p in paths):
            for callback in list(self._callbacks):
                callback()

    def close(self) -> None:
        if self._writes is not None:
            self._writes.close()
