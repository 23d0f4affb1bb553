"""Keeps the WAL small without stalling appends: PASSIVE checkpoints from a second connection.

SQLite's automatic checkpoint runs inside the commit that crosses the threshold, which puts a
multi-millisecond stall on the append path. The writer turns it off; this thread copies WAL frames
into the database every `interval` seconds instead, and when the WAL has grown past `restart_frames`
asks the writer for a short checkpoint between two commits, after which SQLite restarts the WAL.
"""

from __future__ import annotations

import os
import threading

from .connection import connect
from .writer import GroupCommitWriter

DEFAULT_INTERVAL_S = 0.05
DEFAULT_RESTART_FRAMES = 2000  # ~8 MB of 4 KiB pages


class WalCheckpointer:
    def __init__(
        self,
        path: str | os.PathLike[str],
        writer: GroupCommitWriter,
        *,
        interval: float = DEFAULT_INTERVAL_S,
        restart_frames: int = DEFAULT_RESTART_FRAMES,
    ) -> None:
        self._path = path
        self._writer = writer
        self._interval = interval
        self._restart_frames = restart_frames
        self._stop = threading.Event()
        self.last_wal_frames = 0
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._run, name="evlog-checkpointer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = connect(self._path)
        try:
            while not self._stop.wait(self._interval):
                _busy, log_frames, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.checkpoints += 1
                self.last_wal_frames = log_frames
                if log_frames >= self._restart_frames:
                    self._writer.request_wal_checkpoint()
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
