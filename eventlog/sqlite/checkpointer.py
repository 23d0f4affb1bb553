"""Keeps the WAL small without stalling appends: PASSIVE checkpoints from a second connection.

SQLite's automatic checkpoint runs inside the commit that crosses the threshold, which puts a
multi-millisecond stall on the append path. The writer turns it off; this thread copies WAL frames
into the database every `interval` seconds instead, and when the WAL has grown past
`restart_bytes` asks the writer for a short checkpoint between two commits, after which SQLite
restarts the WAL from its beginning.

Between passes this thread asks the kernel to start writing the WAL out every few milliseconds
(evlog/system/writeback.py), so the WAL's fsync in a pass finds little left to do; those fsyncs are
SQLite's guarantee that the database is consistent after a power cut, so they stay. It opens the
WAL itself but never the database: SQLite holds POSIX locks on it, and closing any other
descriptor of such a file drops every lock the process holds on it, which corrupts the database
(it did, in the kill -9 test, when this opened the file too). For the database it borrows its
own connection's descriptor and never closes it. Write-back is skipped while the writer's
commits are large (throughput, not latency) and elsewhere than Linux.

A pass syncs only the WAL: SQLite syncs the database only when a checkpoint has copied the whole
WAL, which here is the writer's, just before a restart; so this thread starts the database's
write-back after each pass and syncs the WAL and the database itself before it asks for a
restart, leaving the writer's checkpoint little to wait for. While nothing is committed it
sleeps longer and skips its passes. The measurements: docs/performance.md#checkpointer.
"""

from __future__ import annotations

import os
import threading

from evlog.system import writeback

from .connection import connect
from .writer import GroupCommitWriter

DEFAULT_INTERVAL_S = 0.05
# Each restart stalls the writer for its checkpoint's two fdatasyncs, so restarts are kept rare
# (docs/performance.md#checkpointer). Below journal_size_limit (connection.py), so the file is
# reused in place rather than truncated and grown again.
DEFAULT_RESTART_BYTES = 20 * 1024 * 1024
DEFAULT_WRITEBACK_INTERVAL_S = 0.005
IDLE_TICK_S = 0.5  # the longest the checkpointer sleeps while nothing is committed
WRITEBACK_BELOW_EVENTS = 256  # per commit, on average since the last tick
# Copying frames competes for the CPU with the writer and the producers on a small machine: this
# thread gives way to them.
CHECKPOINTER_NICE = 19
_WAL_FRAME_HEADER = 24


class WalCheckpointer:
    def __init__(
        self,
        path: str | os.PathLike[str],
        writer: GroupCommitWriter,
        *,
        interval: float = DEFAULT_INTERVAL_S,
        restart_bytes: int = DEFAULT_RESTART_BYTES,
        writeback_interval: float = DEFAULT_WRITEBACK_INTERVAL_S,
    ) -> None:
        self._path = path
        self._writer = writer
        self._interval = interval
        self._restart_bytes = restart_bytes
        self._tick = min(interval, writeback_interval) if writeback.SUPPORTED else interval
        self._stop = threading.Event()
        self.last_wal_frames = 0
        self.checkpoints = 0
        self.restarts_requested = 0
        self.presyncs = 0  # restarts for which this thread synced the WAL and database first
        self._thread = threading.Thread(target=self._run, name="evlog-checkpointer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        writeback.lower_this_threads_priority(CHECKPOINTER_NICE)
        conn, database = writeback.opened_by(lambda: connect(self._path), self._path)
        wal = writeback.Writeback(f"{os.fspath(self._path)}-wal")  # never the database: see above
        try:
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            restart_frames = max(1, self._restart_bytes // (page_size + _WAL_FRAME_HEADER))
            ticks_per_pass = max(1, round(self._interval / self._tick))
            tick = 0
            wait = self._tick
            commits, events = self._writer.commits, self._writer.events_written
            passed_at = -1  # the writer's commit count at the last pass
            while not self._stop.wait(wait):
                new_commits = self._writer.commits - commits
                if new_commits > 0 and (
                    self._writer.events_written - events < WRITEBACK_BELOW_EVENTS * new_commits
                ):
                    wal.start()
                # While nothing is committed, wake up less and less often (an idle log costs
                # next to nothing); a commit after a quiet spell is seen within IDLE_TICK_S.
                wait = self._tick if new_commits else min(wait * 2, IDLE_TICK_S)
                commits, events = self._writer.commits, self._writer.events_written
                tick += 1
                if tick % ticks_per_pass or commits == passed_at:
                    continue
                passed_at = commits
                _busy, log_frames, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.checkpoints += 1
                self.last_wal_frames = log_frames
                if database is not None:
                    database.start()
                if log_frames >= restart_frames:
                    if database is not None:  # so the writer's syncs find little to write
                        wal.sync()
                        database.sync()
                        self.presyncs += 1
                    self._writer.request_wal_checkpoint()
                    self.restarts_requested += 1
        finally:
            wal.close()
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
