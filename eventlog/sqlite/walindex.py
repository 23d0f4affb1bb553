"""Telling whether anything was committed to the log since a moment ago, without a query: the
WAL-index header at the start of the `-shm` file (SQLite's documented walformat: its `iChange`
counter moves with every transaction) read with one pread. An idle follower polls this."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

HEADER_BYTES = 48  # the first copy of the WalIndexHdr


class WalIndex:
    """The header of a log's wal-index, as bytes to compare; None when it cannot be read
    (no -shm yet, another journal mode): then the caller has to ask SQLite."""

    def __init__(self, db: Path) -> None:
        self._path = f"{os.fspath(db)}-shm"
        self._fd: int | None = None
        self._ino = -1

    def header(self) -> bytes | None:
        try:
            st = os.stat(self._path)
            if self._fd is None or st.st_ino != self._ino:  # (re)made since we opened it
                self.close()
                self._fd = os.open(self._path, os.O_RDONLY)
                self._ino = os.fstat(self._fd).st_ino
            data = os.pread(self._fd, HEADER_BYTES, 0)
        except OSError:
            self.close()
            return None
        return data if len(data) == HEADER_BYTES else None

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
