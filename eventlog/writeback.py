"""Starts the kernel's write-back of a file's dirty pages without waiting for it (Linux
`sync_file_range`), so that the fsync a checkpoint must do later finds little left to write."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable

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
    file drops all of the process's POSIX locks on it, and SQLite's with them."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = path
        self._fd: int | None = None

    def start(self) -> None:
        if _sync_file_range is None:
            return
        if self._fd is None:
            try:
                self._fd = os.open(self._path, os.O_RDONLY)
            except OSError:
                return  # not there yet
        _sync_file_range(self._fd, 0, 0, _SYNC_FILE_RANGE_WRITE)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
