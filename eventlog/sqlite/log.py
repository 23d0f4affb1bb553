"""`EventLog`: the async face of the log file: append, read, follow, checkpoints, dead letters."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import os
import sqlite3
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

import aiosqlite
import orjson

from evlog.system.changes import WalWrites

from ..columns import EVENT_COLUMNS, READ_ORDER
from ..encoding import EncodedEvents, encode_events
from ..envelope import (
    NO_RESULTS,
    AppendResults,
    DeadLetter,
    LogStats,
    NewEvent,
    SourceCheckpoint,
)
from ..errors import EventLogError
from ..logbase import LogBase
from . import deadletters
from .checkpointer import WalCheckpointer
from .connection import BUSY_TIMEOUT_MS, Durability, connect, ensure_parent
from .schema import SCHEMA_VERSION, migrate
from .walindex import WalIndex
from .writer import AppendRequest, GroupCommitWriter

DEFAULT_POLL_INTERVAL_S = 0.002
IDLE_POLL_S = 0.025  # the slowest a follower polls for other processes' commits (no inotify)
SAFETY_POLL_S = 1.0  # ...and with inotify, which wakes it at every WAL write (in case one is lost)
_FORGET_SOURCE = "DELETE FROM source_checkpoints WHERE source = ?"


class EventLog(LogBase):
    """One log file. Open with `await EventLog.open(path)` or `async with EventLog.open(...)`."""

    def __init__(
        self,
        path: Path,
        reader: aiosqlite.Connection,
        writer: GroupCommitWriter | None,
        checkpointer: WalCheckpointer | None,
        poll_interval: float,
    ) -> None:
        self.path = path
        self._reader = reader
        self._writer = writer
        self._checkpointer = checkpointer
        self._poll_interval = poll_interval
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        # Commits wake this loop only while something follows: a wake-up is a cross-thread
        # call per commit, which a log that only appends should not pay (bench/append p99).
        self._listener = (self._loop, self._on_commit)
        self._followers = 0
        self._waiting = 0  # followers waiting for a commit (each is told: _begin_wait)
        self._writes: WalWrites | None = None  # while following: other processes' WAL writes
        # Appends submitted in this turn of the event loop, and in the last turn that had any.
        self._turn_appends = 0
        self._last_turn_appends = 0
        self._read_sql = _READ_ROWS

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        writable: bool = True,
        durability: Durability = Durability.NORMAL,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
    ) -> Self:
        """Open (and create, migrate) the log file at `path`. `writable=False` opens it for
        reading only (it must exist). `durability`: see Durability. `poll_interval`: how soon
        a follower looks again after a commit it was told of (seconds)."""
        p = Path(path)
        if writable:
            ensure_parent(p)
            await asyncio.to_thread(_prepare_file, p)
        elif not await asyncio.to_thread(p.exists):
            raise EventLogError(f"{p}: no event log here (run `evlog ingest` first)")
        read_sql = await asyncio.to_thread(_up_to_date_for_reading, p, writable)
        writer = checkpointer = None
        if writable:
            writer = await asyncio.to_thread(GroupCommitWriter, p, durability)
            checkpointer = WalCheckpointer(p, writer)
        reader = await _open_reader(p)
        log = cls(p, reader, writer, checkpointer, poll_interval)
        log._read_sql = read_sql
        return log

    @property
    def where(self) -> str:
        """The log file's path, as given."""
        return str(self.path)

    async def close(self) -> None:
        """Finish queued appends, then stop the writer and checkpointer and close connections."""
        if self._writer is not None:
            if self._followers:
                self._writer.remove_listener(self._listener)
            await asyncio.to_thread(self._writer.close)
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.close)
        await self._reader.close()
        self._wake.set()

    # -- appending -------------------------------------------------------------------------------

    async def append_many(
        self,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None = None,
        checkpoint: SourceCheckpoint | None = None,
        dead_letters: Sequence[DeadLetter] = (),
    ) -> AppendResults:
        """Append `events` atomically (all or none), with an optional source checkpoint and dead
        letters in the same transaction. Duplicates (known keys) come back with `duplicate=True`.
        Raises ConcurrencyError if `expected_version` is given and the stream is elsewhere."""
        return await self._outcome(
            self.submit(
                events,
                expected_version=expected_version,
                checkpoint=checkpoint,
                dead_letters=dead_letters,
            )
        )

    async def _outcome(self, fut: asyncio.Future[AppendResults]) -> AppendResults:
        if fut.done():
            # Committed inline: yield once anyway, so that other callers of this turn of the
            # loop queue up for one group commit (and this caller's next append, in the next
            # turn, may be inline again).
            await asyncio.sleep(0)
        return await fut

    def submit(
        self,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None = None,
        checkpoint: SourceCheckpoint | None = None,
        dead_letters: Sequence[DeadLetter] = (),
    ) -> asyncio.Future[AppendResults]:
        """Queue an append and return its future at once: lets a producer pipeline batches."""
        writer = self._live_writer()
        if expected_version is not None and len({e.stream for e in events}) != 1:
            raise ValueError("expected_version needs the events of the append in one stream")
        encoded = encode_events(events)
        return self._submit_encoded(writer, encoded, expected_version, checkpoint, dead_letters, ())

    def _live_writer(self) -> GroupCommitWriter:
        if self._writer is None:
            raise EventLogError(f"{self.path}: opened read-only")
        return self._writer

    def _submit_encoded(
        self,
        writer: GroupCommitWriter,
        events: EncodedEvents,
        expected_version: int | None,
        checkpoint: SourceCheckpoint | None,
        dead_letters: Sequence[DeadLetter],
        resolves: Sequence[tuple[int, int]],
    ) -> asyncio.Future[AppendResults]:
        fut: asyncio.Future[AppendResults] = self._loop.create_future()
        if not events.params and checkpoint is None and not dead_letters:
            fut.set_result(NO_RESULTS)
            return fut
        request = AppendRequest(
            events=events,
            expected_version=expected_version,
            checkpoint=checkpoint,
            dead_letters=dead_letters,
            resolves=resolves,
            loop=self._loop,
            future=fut,
        )
        # Inline only for a caller who appends alone: the first append of this turn of the loop,
        # after a turn with at most one. Many callers (several appends a turn) are left to the
        # writer thread's group commit, which serves them better.
        if not self._turn_appends:
            self._loop.call_soon(self._next_turn)
        self._turn_appends += 1
        alone = self._turn_appends == 1 and self._last_turn_appends <= 1
        if not (alone and writer.try_inline(request)):
            writer.submit(request)
        return fut

    def _next_turn(self) -> None:
        self._last_turn_appends, self._turn_appends = self._turn_appends, 0

    async def append_encoded(
        self,
        events: EncodedEvents,
        *,
        checkpoint: SourceCheckpoint | None = None,
        dead_letters: Sequence[DeadLetter] = (),
        resolves: Sequence[tuple[int, int]] = (),
    ) -> AppendResults:
        """Like `append_many` for events already encoded by `encode_events` (e.g. in another
        process, so a large import's parsing does not share this process's GIL with the
        writer). `resolves` pairs dead letters (by id) with the event (by index) that replaces
        each: they are marked resolved in the same transaction."""
        return await self._outcome(
            self._submit_encoded(
                self._live_writer(), events, None, checkpoint, dead_letters, resolves
            )
        )

    def submit_threadsafe(
        self, events: Sequence[NewEvent], *, expected_version: int | None = None
    ) -> concurrent.futures.Future[AppendResults]:
        """Append from any thread without the event loop: the future is settled by the writer."""
        writer = self._live_writer()
        fut: concurrent.futures.Future[AppendResults] = concurrent.futures.Future()
        writer.submit(
            AppendRequest(
                events=encode_events(events), expected_version=expected_version, future=fut
            )
        )
        return fut

    def _begin_wait(self) -> None:
        """A follower waits for a commit: be told of them (this process's writer, and writes
        to the WAL by any process). Only while one waits: at thousands of commits a second,
        each notice is a wake-up of the loop, which a follower busy applying does not need
        (docs/performance.md#follower-notices)."""
        self._waiting += 1
        if self._waiting == 1:
            if self._writer is not None:
                self._writer.add_listener(self._listener)
            if self._writes is not None:
                self._writes.resume()

    def _end_wait(self) -> None:
        self._waiting -= 1
        if self._waiting == 0:
            if self._writer is not None:
                self._writer.remove_listener(self._listener)
            if self._writes is not None:
                self._writes.pause()

    def _on_write(self) -> None:
        self._on_commit(0)

    def _on_commit(self, last_seq: int) -> None:
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    # -- reading ---------------------------------------------------------------------------------

    async def read_rows(self, after: int = 0, limit: int = 1000) -> list[tuple[Any, ...]]:
        """Like `read` but raw tuples in EVENT_COLUMNS order: the bulk path for projections."""
        return await _read_rows(self._reader, after, limit, self._read_sql)

    async def follow_rows(
        self, after: int = 0, *, batch_limit: int = 1000
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """Like `follow`, but raw tuples in EVENT_COLUMNS order (eventlog/columns.py): the bulk
        path for projections."""
        conn = await _open_reader(self.path)
        self._followers += 1
        if self._followers == 1:
            self._writes = WalWrites.open(self.path, self._loop)  # None: poll instead
            if self._writes is not None:
                self._writes.subscribe(self._on_write)
                self._writes.pause()  # until a follower waits
        # Told of other processes' commits (inotify), an idle follower need hardly poll at all.
        idle_poll = SAFETY_POLL_S if self._writes is not None else IDLE_POLL_S
        index = WalIndex(self.path)
        try:
            position = after
            wait = self._poll_interval
            quiet: bytes | None = None  # the wal-index header when a read last found nothing
            while True:
                wake = self._wake  # taken before the read, so a commit in between is not missed
                # A pread of a local file's header, not a query: an idle poll costs microseconds.
                header = index.header()
                if header is None or header != quiet:
                    rows = await _read_rows(conn, position, batch_limit, self._read_sql)
                    if rows:
                        position = rows[-1][0]
                        wait = self._poll_interval
                        quiet = None
                        yield rows
                        continue
                    quiet = header  # taken before the read: a commit after it changes it
                self._begin_wait()
                try:
                    if header is not None and index.header() != header:
                        continue  # committed while the wake-ups were being switched on
                    async with asyncio.timeout(wait):
                        await wake.wait()
                    # Woken by a commit here, or a write to the WAL by another process: that
                    # write comes before SQLite publishes the commit, so look again soon.
                    wait = self._poll_interval
                except TimeoutError:
                    # Nothing arrived: poll less and less often, so an idle follower costs
                    # next to nothing (every timer wake-up has a price).
                    wait = min(wait * 1.25, max(idle_poll, self._poll_interval))
                finally:
                    self._end_wait()
        finally:
            index.close()
            self._followers -= 1
            if self._followers == 0 and self._writes is not None:
                self._writes.close()
                self._writes = None
            await conn.close()

    async def log_id(self) -> str | None:
        """This log's identity (made once, kept in the file); None for a file of an older
        schema opened for reading only."""
        try:
            async with self._reader.execute("SELECT value FROM log_meta WHERE key = 'id'") as cur:
                row = await cur.fetchone()
        except sqlite3.OperationalError:  # no such table: not migrated yet
            return None
        return None if row is None else f"sqlite:{row[0]}"

    async def head(self) -> int:
        """The log's last sequence (0 for an empty log)."""
        async with self._reader.execute("SELECT coalesce(max(seq), 0) FROM events") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def source_checkpoint(self, source: str) -> Any | None:
        """Where `source` was read to (its adapter's position, with its mapping), or None."""
        async with self._reader.execute(
            "SELECT position FROM source_checkpoints WHERE source = ?", (source,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else orjson.loads(row[0])

    async def source_checkpoints(self) -> list[dict[str, Any]]:
        """Every source's checkpoint: source, position, last_seq, updated_ns."""
        async with self._reader.execute(
            "SELECT source, position, last_seq, updated_ns FROM source_checkpoints ORDER BY source"
        ) as cur:
            rows = await cur.fetchall()
        return [
            {"source": s, "position": orjson.loads(p), "last_seq": q, "updated_ns": u}
            for s, p, q, u in rows
        ]

    async def dead_letter_count(self, *, open_only: bool = False) -> int:
        """How many dead letters the log holds (resolved ones included unless `open_only`)."""
        total, still_open = await asyncio.to_thread(_reading, self.path, deadletters.counts)
        return still_open if open_only else total

    async def dead_letters(
        self,
        *,
        source: str | None = None,
        limit: int | None = 100,
        resolved: bool | None = False,
        raw_bytes: bool = False,
        after: int | None = None,
    ) -> list[dict[str, Any]]:
        """The newest `limit` dead letters (None: all), oldest first; with `after`, the oldest
        `limit` whose id is greater. `resolved`: False for those still open, True for those a
        retry replaced by an event, None for both."""

        def page(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            found = deadletters.letters(
                conn, source=source, resolved=resolved, after=after, newest_first=after is None
            )
            out = list(itertools.islice(found, limit))
            return out if after is not None else out[::-1]

        out = await asyncio.to_thread(_reading, self.path, page)
        if not raw_bytes:
            for d in out:
                if isinstance(d["raw"], bytes):
                    d["raw"] = d["raw"].decode("utf-8", errors="replace")
        return out

    async def dead_letter(self, id_: int) -> dict[str, Any] | None:
        """One dead letter by id (its raw record as bytes), or None."""

        def one(conn: sqlite3.Connection) -> dict[str, Any] | None:
            found = deadletters.letters(conn, resolved=None, after=id_ - 1)
            letter = next(found, None)
            return letter if letter is not None and letter["id"] == id_ else None

        return await asyncio.to_thread(_reading, self.path, one)

    async def forget_source(self, source: str) -> bool:
        """Delete a source's checkpoint (and so its stored mapping): its next ingest reads it
        from the start. Its events stay; their keys keep a re-read from appending them again.
        Returns whether there was one."""
        self._live_writer()
        return await asyncio.to_thread(_run_once, self.path, _FORGET_SOURCE, (source,)) > 0

    async def purge_dead_letters(
        self,
        *,
        source: str | None = None,
        older_than_ns: int | None = None,
        resolved_only: bool = False,
    ) -> int:
        """Delete dead letters (of `source`; created before `older_than_ns`; only those a retry
        resolved): they are the log's record of what could not be read, so only on request.
        Returns how many were deleted."""
        self._live_writer()

        def purge(conn: sqlite3.Connection) -> int:
            return deadletters.purge(
                conn, source=source, older_than_ns=older_than_ns, resolved_only=resolved_only
            )

        return await asyncio.to_thread(_writing, self.path, purge)

    async def known_sources(self) -> set[str]:
        """Every source with a checkpoint or a dead letter."""
        sql = (
            "SELECT source FROM source_checkpoints UNION SELECT t.text FROM dead_letter_blocks b"
            " JOIN dead_letter_texts t ON t.id = b.source"
        )
        async with self._reader.execute(sql) as cur:
            return {str(r[0]) for r in await cur.fetchall()}

    async def stats(self) -> LogStats:
        """Head, counts (events, streams, open dead letters, sources) and file sizes."""
        q = """SELECT
            (SELECT coalesce(max(seq), 0) FROM events),
            (SELECT count(*) FROM events),
            (SELECT count(*) FROM streams WHERE stream <> ''),
            (SELECT coalesce(sum(open), 0) FROM dead_letter_blocks),
            (SELECT count(*) FROM source_checkpoints)"""
        async with self._reader.execute(q) as cur:
            row = await cur.fetchone()
        assert row is not None
        db_bytes, wal_bytes = await asyncio.to_thread(_file_sizes, self.path)
        return LogStats(
            path=str(self.path),
            head_seq=row[0],
            events=row[1],
            streams=row[2],
            dead_letters=row[3],
            sources=row[4],
            db_bytes=db_bytes,
            wal_bytes=wal_bytes,
        )


def _file_sizes(path: Path) -> tuple[int, int]:
    wal = Path(f"{path}-wal")
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


T = TypeVar("T")


def _reading(path: Path, read: Callable[[sqlite3.Connection], T]) -> T:
    """`read` on a short-lived connection, in one read transaction (one snapshot)."""
    conn = connect(path)
    try:
        conn.execute("BEGIN")
        try:
            return read(conn)
        finally:
            conn.execute("COMMIT")
    finally:
        conn.close()


def _writing(path: Path, write: Callable[[sqlite3.Connection], T]) -> T:
    """`write` in its own transaction on a short-lived connection (rare admin writes)."""
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = write(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return out
    finally:
        conn.close()


def _run_once(path: Path, sql: str, params: tuple[Any, ...]) -> int:
    """One statement in its own transaction on a short-lived connection (rare admin writes:
    SQLite's lock orders it with the writer's commits). Returns the rows it changed."""
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        changed = conn.execute(sql, params).rowcount
        conn.execute("COMMIT")
        return changed
    finally:
        conn.close()


def _prepare_file(path: Path) -> None:
    conn = connect(path)
    try:
        migrate(conn)
    finally:
        conn.close()


async def _open_reader(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


_READ_ROWS = f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?"


def _up_to_date_for_reading(path: Path, writable: bool) -> str:
    """The SELECT that reads events from `path`. A file of an older schema opened for reading
    is migrated if it can be (as any writable open would); if it cannot (a read-only file),
    the columns it lacks read as NULL."""
    if writable:
        return _READ_ROWS
    try:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                with contextlib.suppress(sqlite3.Error), contextlib.closing(connect(path)) as w:
                    migrate(w)
            have = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    except sqlite3.Error:
        return _READ_ROWS  # the file cannot be read now: the reads will say why, as they would
    if not have or have.issuperset(READ_ORDER):
        return _READ_ROWS
    columns = ", ".join(c if c in have else f"NULL AS {c}" for c in READ_ORDER)
    return f"SELECT {columns} FROM events WHERE seq > ? ORDER BY seq LIMIT ?"


async def _read_rows(
    conn: aiosqlite.Connection, after: int, limit: int, sql: str = _READ_ROWS
) -> list[tuple[Any, ...]]:
    # One trip to aiosqlite's thread (execute, fetch and close there), not three: each trip is
    # two thread wake-ups, which were most of an idle follower's CPU.
    rows: Iterable[sqlite3.Row] = await conn.execute_fetchall(sql, (after, limit))
    return [tuple(r) for r in rows]
