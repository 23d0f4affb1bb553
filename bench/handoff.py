"""Open-loop baselines for bench/append: the same producer threads hand their events to a plain
consumer thread instead of evlog's writer, in the same run, so evlog's latency at an offered rate
reads beside what the machine and a hand-written SQLite writer do at that rate.

`HandoffFloor` does nothing with the events: what this machine's scheduler and the GIL cost any
design that passes work from one thread to another (no design of that shape can beat it).
`RawSqliteWriter` commits whatever is queued in one transaction on a bare sqlite3 connection
with SQLite's defaults (WAL, synchronous=NORMAL, its own automatic checkpoint): the writer
thread one would write by hand.
"""

from __future__ import annotations

import concurrent.futures
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from evlog.eventlog import NewEvent
from evlog.eventlog.sqlite.writer import take_queued


def raw_sqlite(path: Path) -> sqlite3.Connection:
    """The bare connection and table every raw sqlite3 baseline writes to: autocommit (BEGIN
    issued by the caller), WAL, synchronous=NORMAL, SQLite's defaults otherwise; usable from
    another thread than the one that opened it."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS e (seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT,"
        " version INT, key TEXT UNIQUE, payload TEXT, t INT, UNIQUE(stream, version))"
    )
    return conn


class ThreadSubmitter(Protocol):
    """What bench/append's producer threads call: evlog's EventLog and the baselines below."""

    def submit_threadsafe(self, events: Sequence[NewEvent]) -> concurrent.futures.Future[Any]: ...


_Item = tuple[Any, concurrent.futures.Future[None]]


def _one(_item: _Item) -> int:
    return 1


class HandoffFloor:
    """Producers -> SimpleQueue -> one thread that settles each future at once, taking
    everything queued per wake-up (as evlog's writer does)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="bench-consumer", daemon=True)
        self._thread.start()

    def submit_threadsafe(self, events: Sequence[NewEvent]) -> concurrent.futures.Future[None]:
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put((self.prepare(events), fut))
        return fut

    def prepare(self, events: Sequence[NewEvent]) -> Any:
        """Work done in the producer's thread (evlog encodes payloads there too)."""
        return events

    def handle(self, batch: list[Any]) -> None:
        """Work done in the consumer thread for everything taken in one wake-up."""

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            # evlog's writer takes its batches the same way (without a size limit here).
            items, stopping = take_queued(self._queue, None, _one, sys.maxsize)
            if not items:
                continue
            self.handle([prepared for prepared, _ in items])
            for _, fut in items:
                fut.set_result(None)


class RawSqliteWriter(HandoffFloor):
    """The same hand-off, plus one BEGIN IMMEDIATE ... COMMIT per wake-up on a bare sqlite3
    connection: WAL, synchronous=NORMAL, SQLite's automatic checkpoint left on (its default)."""

    def __init__(self, path: Path) -> None:
        self._conn = raw_sqlite(path)
        self._versions: dict[str, int] = {}
        super().__init__()

    def prepare(self, events: Sequence[NewEvent]) -> Any:
        return [(e.stream, e.key, orjson.dumps(e.payload).decode()) for e in events]

    def handle(self, batch: list[Any]) -> None:
        rows = []
        now = time.time_ns()
        for prepared in batch:
            for stream, key, payload in prepared:
                version = self._versions[stream] = self._versions.get(stream, 0) + 1
                rows.append((stream, version, key, payload, now))
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.executemany(
            "INSERT INTO e (stream, version, key, payload, t) VALUES (?,?,?,?,?)", rows
        )
        self._conn.execute("COMMIT")

    def close(self) -> None:
        super().close()
        self._conn.close()
