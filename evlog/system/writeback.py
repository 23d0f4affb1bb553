"""Moves the disk writes of a checkpoint off the writer: starts the kernel's write-back of a
file's dirty pages early (Linux `sync_file_range`) and syncs it ahead of time, so that the fsyncs
a checkpoint must do later find little left to write. Every platform trick of the log lives
here (sync_file_range, the /proc/self/fd scan, a thread's own nice value), each behind
`SUPPORTED` or a check of its own, with a fallback that does nothing: the log then works the
same, only with its checkpoint syncs done by SQLite at the usual time."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_SYNC_FILE_RANGE_WRITE = 2


def _load() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load()
SUPPORTED = _sync_file_range is not None


class Writeback:
    """Nudges the kernel to write one file out now, a little at a time, rather than all at once
    inside an fsync. The file is opened on first use (it may not exist yet) and kept open: a
    WAL stays the same file while a connection (the checkpointer's) has its database open.

    Never give it a file SQLite locks (the database, its -shm): closing a second descriptor of a
    file drops all of the process's POSIX locks on it, and SQLite's with them. For those, see
    `Borrowed`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = path
        self._fd: int | None = None

    def _open(self) -> int | None:
        if self._fd is None:
            with contextlib.suppress(OSError):  # not there yet
                self._fd = os.open(self._path, os.O_RDONLY)
        return self._fd

    def start(self) -> None:
        if SUPPORTED and _sync_file_range is not None and (fd := self._open()) is not None:
            _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)

    def sync(self) -> None:
        fd = self._open() if SUPPORTED else None
        if fd is not None:
            os.fdatasync(fd)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class Borrowed:
    """Write-back and sync through a descriptor SQLite opened: the database file of a connection
    the caller keeps open for as long as it uses this. It is never opened or closed here, so
    SQLite's locks are safe. Before each use the descriptor is checked to still be that file."""

    def __init__(self, fd: int, identity: tuple[int, int]) -> None:
        self._fd = fd
        self._identity = identity  # (device, inode) of the database file

    @classmethod
    def opened_since(cls, before: set[int], path: str | os.PathLike[str]) -> Borrowed | None:
        """The descriptor of `path` among those this process opened since `before` (from
        `open_descriptors()`), or None: none, or not on Linux."""
        if not SUPPORTED:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        identity = (st.st_dev, st.st_ino)
        for fd in sorted(open_descriptors() - before):
            if _identity_of(fd) == identity:
                return cls(fd, identity)
        return None

    def _still_ours(self) -> bool:
        return _identity_of(self._fd) == self._identity

    def start(self) -> None:
        if _sync_file_range is not None and self._still_ours():
            _sync_file_range(self._fd, 0, 0, _SYNC_FILE_RANGE_WRITE)

    def sync(self) -> None:
        if self._still_ours():
            os.fdatasync(self._fd)


def opened_by(open_: Callable[[], T], path: str | os.PathLike[str]) -> tuple[T, Borrowed | None]:
    """Run `open_()` (e.g. opening a SQLite connection) and find the descriptor it opened on
    `path`, to borrow (never close: see Borrowed). None where that cannot be told."""
    before = open_descriptors() if SUPPORTED else set()
    opened = open_()
    return opened, Borrowed.opened_since(before, path)


def lower_this_threads_priority(nice: int) -> None:
    """On Linux a thread has its own nice value (setpriority on its thread id); elsewhere, or
    where not permitted, the thread keeps the process's priority."""
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


def open_descriptors() -> set[int]:
    """This process's open file descriptors (Linux), else an empty set."""
    try:
        listed = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return set()
    # The listing's own descriptor is among them, closed by now: its number is free for reuse.
    return {fd for fd in listed if _identity_of(fd) is not None}


def _identity_of(fd: int) -> tuple[int, int] | None:
    """(device, inode) of the file open on `fd`; None if `fd` is not open."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino
