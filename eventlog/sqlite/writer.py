"""The single writer of a process: a thread that gathers concurrent appends into group commits.

Producers put requests on a queue and await a future; the thread takes everything queued,
writes it in one `BEGIN IMMEDIATE` transaction, commits once, and settles all the futures with one
wake-up per event loop. While one commit runs, the next batch gathers, so throughput grows with
load while an idle log commits a single event at once.

An idle writer also takes a small append inline, on the caller's thread (`try_inline`): nothing
queued or in flight, the write lock free at once, durability normal (no fsync). A caller who
awaits each append in turn then pays one commit (tens of µs) instead of two thread hand-offs; the
event loop is held for that one commit, never for a wait.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import orjson

from ..encoding import COLUMNS, COMMITTED_NS, KEY, ROW_WIDTH, SEQ, STREAM, VERSION, EncodedEvents
from ..envelope import NO_RESULTS, AppendResult, AppendResults, DeadLetter, SourceCheckpoint
from ..errors import ConcurrencyError, LogClosedError
from . import deadletters
from .connection import BUSY_TIMEOUT_MS, Durability, connect

MAX_EVENTS_PER_COMMIT = 20_000
INLINE_MAX_EVENTS = 16  # larger appends go to the writer thread (the loop is held per row)
LOCK_RETRY_FIRST_S = 50e-6
LOCK_RETRY_MAX_S = 1e-3


def _values_sql(head: str, width: int, rows: int, tail: str = "") -> str:
    """`head VALUES (?,..),(?,..) tail`: `rows` rows of `width` parameters."""
    row = "(" + ",".join("?" * width) + ")"
    return f"{head} VALUES {','.join([row] * rows)}{tail}"


_EVENTS_HEAD = f"INSERT INTO events ({', '.join(COLUMNS)})"
_SKIP_KNOWN_KEY = " ON CONFLICT (key) DO NOTHING"
_INSERT_EVENT = _values_sql(_EVENTS_HEAD, ROW_WIDTH, 1)
# Large commits insert ROWS_PER_STATEMENT rows per statement: one sqlite3_step (one release and
# re-take of the GIL, which the producers' threads hold in between) per chunk instead of per
# row. What is left over after the chunks goes in one statement up to SMALL_ROWS rows, else
# through executemany (docs/performance.md#writer-statements).
# (SQLite before 3.32 allows 999 parameters per statement: the writer asks its connection.)
ROWS_PER_STATEMENT = 256
_INSERT_EVENT_FAST = _INSERT_EVENT + _SKIP_KNOWN_KEY
# Commits this small insert all their rows in one statement (one GIL release and re-take in
# the writer instead of one per row).
SMALL_ROWS = 8
_UPSERT_STREAMS = {
    k: _values_sql(
        "INSERT INTO streams (stream, version, last_seq)", 3, k,
        " ON CONFLICT (stream) DO UPDATE SET version = excluded.version,"
        " last_seq = excluded.last_seq",
    )
    for k in range(1, SMALL_ROWS + 1)
}  # fmt: skip
LOG_HEAD = ""  # the streams row that holds the log's last sequence
_UPSERT_CHECKPOINT = (
    "INSERT INTO source_checkpoints (source, position, last_seq, updated_ns) VALUES (?,?,?,?)"
    " ON CONFLICT (source) DO UPDATE SET position = excluded.position,"
    " last_seq = coalesce(excluded.last_seq, source_checkpoints.last_seq),"
    " updated_ns = excluded.updated_ns"
)


Outcome = AppendResults | BaseException
# (loop, callback(last_seq)) pairs run in their loop after every commit that appended something.
CommitListener = tuple[asyncio.AbstractEventLoop, Callable[[int], None]]


@dataclass(slots=True)
class AppendRequest:
    # Encoded by the caller (see encoding.py), so a bad payload fails at the call site and the
    # writer thread spends its time in SQLite only.
    events: EncodedEvents
    expected_version: int | None = None
    checkpoint: SourceCheckpoint | None = None
    dead_letters: Sequence[DeadLetter] = ()
    # (dead letter id, index of the event in this request that replaces it)
    resolves: Sequence[tuple[int, int]] = ()
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[AppendResults] | concurrent.futures.Future[AppendResults] = field(
        default_factory=concurrent.futures.Future
    )
    outcome: Outcome | None = None  # set by the writer inside its transaction


_STOP = object()
_WAKE = object()  # wakes the thread between commits (a WAL checkpoint was asked for)


class _Busy(Exception):
    """Another connection holds the write lock: the inline path steps aside."""


def take_queued(
    q: queue.SimpleQueue[Any], stop: object, size: Callable[[Any], int], limit: int
) -> tuple[list[Any], bool]:
    """One wake-up's batch: block for the next item, then take whatever else is queued at that
    moment, until the items' `size`s reach `limit`. Returns (batch, stopping): `stop` ends the
    batch and is not part of it (so the batch is empty if `stop` came first)."""
    first = q.get()
    if first is stop:
        return [], True
    batch = [first]
    count = size(first)
    while count < limit:
        try:
            item = q.get_nowait()
        except queue.Empty:
            break
        if item is stop:
            return batch, True
        batch.append(item)
        count += size(item)
    return batch, False


def _events_in(request: AppendRequest) -> int:
    return len(request.events) if isinstance(request, AppendRequest) else 0


class GroupCommitWriter:
    """Owns the process's write connection to one log file, on a dedicated thread."""

    def __init__(self, path: str | os.PathLike[str], durability: Durability) -> None:
        self._path = path
        self._durability = durability
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._heads: dict[str, int] = {}
        self._data_version = -1
        # Replaced, never mutated, so the writer thread can read it without a lock.
        self._listeners: tuple[CommitListener, ...] = ()
        self._listeners_lock = threading.Lock()
        self._closed = False
        self._checkpoint_wanted = False
        # Held for every use of the connection (the thread's commits, inline commits).
        self._commit_lock = threading.Lock()
        # Requests queued or being committed; inline commits wait for it to be 0 so that they
        # never overtake an earlier append (a source's checkpoints must commit in order).
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._inline_ok = durability is Durability.NORMAL
        self._ready = concurrent.futures.Future[None]()
        self._thread = threading.Thread(target=self._run, name="evlog-writer", daemon=True)
        self.commits = 0
        self.inline_commits = 0  # of those, taken on the caller's thread
        self.commit_ns_total = 0
        self.events_written = 0
        self._seq: int | None = None  # last sequence committed, valid while data_version holds
        self._thread.start()
        self._ready.result()

    # -- API used by EventLog (any thread) -------------------------------------------------------

    def submit(self, request: AppendRequest) -> None:
        if self._closed:
            raise LogClosedError("the event log is closed")
        with self._pending_lock:
            self._pending += 1
        self._queue.put(request)

    def try_inline(self, request: AppendRequest) -> bool:
        """Commit `request` now on this thread if the writer is idle and the write lock free
        (its future is settled before this returns); False: nothing was done, submit it."""
        if not self._inline_ok or self._closed or len(request.events) > INLINE_MAX_EVENTS:
            return False
        with self._pending_lock:
            if self._pending or not self._commit_lock.acquire(blocking=False):
                return False
            self._pending += 1
        try:
            self._commit([request], self._begin(wait=False))
            self.inline_commits += 1
        except _Busy:
            self._done(1)
            return False
        finally:
            self._commit_lock.release()
        return True

    def request_wal_checkpoint(self) -> None:
        """Ask for a short checkpoint on the writer's own connection between two commits.

        The background checkpointer copies most of the WAL; only the writer, between its own
        transactions, can finish it so the next write restarts the WAL from the beginning."""
        self._checkpoint_wanted = True
        if not self._closed:
            self._queue.put(_WAKE)  # inline commits may leave the thread asleep

    def add_listener(self, listener: CommitListener) -> None:
        with self._listeners_lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: CommitListener) -> None:
        with self._listeners_lock:
            self._listeners = tuple(x for x in self._listeners if x != listener)

    def close(self) -> None:
        """Finish every queued request, then stop the thread and close the connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._conn = connect(
                self._path, writer=True, durability=self._durability, check_same_thread=False
            )
            # Waiting for another process's write lock is done by _begin, in short steps.
            self._conn.execute("PRAGMA busy_timeout = 0")
            self._chunk = _RowChunks(self._conn)
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        try:
            stopping = False
            while not stopping:
                batch, stopping = take_queued(self._queue, _STOP, _events_in, MAX_EVENTS_PER_COMMIT)
                batch = [r for r in batch if r is not _WAKE]
                with self._commit_lock:
                    if batch:
                        self._commit(batch)
                    if self._checkpoint_wanted:
                        self._checkpoint_wanted = False
                        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            with self._commit_lock:
                self._conn.close()
            self._fail_pending()

    def _fail_pending(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, AppendRequest):
                item.outcome = LogClosedError("the event log is closed")
                self._settle([item], None)

    def _commit(self, batch: list[AppendRequest], begun_ns: int | None = None) -> None:
        """Write and commit `batch` (under _commit_lock), then settle it. `begun_ns`: the
        transaction was begun by the caller, at that stamp."""
        conn = self._conn
        started = time.perf_counter_ns()
        try:
            committed_ns = self._begin() if begun_ns is None else begun_ns
            heads = self._fast_path(batch, committed_ns)
            if heads is None:
                # A duplicate key or a version conflict: start over and go row by row.
                conn.execute("ROLLBACK")
                committed_ns = self._begin(wait=begun_ns is None)
                heads = self._slow_path(batch, committed_ns)
            for req in batch:
                if (req.checkpoint is not None or req.dead_letters or req.resolves) and isinstance(
                    req.outcome, AppendResults
                ):
                    self._write_side_records(req, committed_ns)
            conn.execute("COMMIT")
        except _Busy:
            raise  # inline, and the lock was taken between the two tries: nothing was written
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._heads.clear()
            self._seq = None
            for req in batch:
                req.outcome = exc
            self._settle(batch, None)
            if not isinstance(exc, Exception):
                raise
            return
        self._heads.update(heads)
        self.commits += 1
        self.commit_ns_total += time.perf_counter_ns() - started
        self._settle(batch, self._seq)

    def _done(self, n: int) -> None:
        with self._pending_lock:
            self._pending -= n

    def _begin(self, wait: bool = True) -> int:
        """BEGIN IMMEDIATE; drop cached heads if another connection committed since our last look.
        Returns the commit stamp (ns): taken once we hold the write lock. Without `wait`, a
        write lock held elsewhere raises _Busy at once."""
        conn = self._conn
        delay, deadline = LOCK_RETRY_FIRST_S, time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                # SQLite's own busy handler sleeps up to 100 ms between tries, which put tens of
                # ms into p99 with several processes appending (docs/performance.md).
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if not wait:
                    raise _Busy from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, LOCK_RETRY_MAX_S)
        data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        if data_version != self._data_version:
            self._heads.clear()
            self._seq = None
            self._data_version = data_version
        return time.time_ns()

    def _head(self, stream: str, heads: dict[str, int]) -> int:
        head = heads.get(stream)
        if head is None:
            head = self._heads.get(stream)
            if head is None:
                row = self._conn.execute(
                    "SELECT version FROM streams WHERE stream = ?", (stream,)
                ).fetchone()
                head = row[0] if row else 0
            heads[stream] = head
        return head

    def _last_seq(self) -> int:
        """The highest sequence handed out so far: our cache, else the log's row in `streams`
        (or a higher seq in `events`, should someone have inserted rows by hand)."""
        if self._seq is None:
            self._seq = self._conn.execute(
                "SELECT max(coalesce((SELECT version FROM streams WHERE stream = ?), 0),"
                " coalesce((SELECT max(seq) FROM events), 0))",
                (LOG_HEAD,),
            ).fetchone()[0]
        return self._seq

    def _write_heads(self, heads: dict[str, int], tails: dict[str, int]) -> None:
        """Store the new head of every stream appended to (`tails`: its last seq), and the log's."""
        rows = [(stream, heads[stream], seq) for stream, seq in tails.items()]
        if rows:
            last = self._last_seq()
            rows.append((LOG_HEAD, last, last))
            if len(rows) <= SMALL_ROWS:
                self._conn.execute(_UPSERT_STREAMS[len(rows)], list(chain.from_iterable(rows)))
            else:
                self._conn.executemany(_UPSERT_STREAMS[1], rows)

    def _fast_path(self, batch: list[AppendRequest], committed_ns: int) -> dict[str, int] | None:
        """Insert the whole batch at once; gives up (returns None) on any duplicate key or
        version conflict, which the slow path then handles row by row."""
        heads: dict[str, int] = {}
        tails: dict[str, int] = {}
        seq = first = self._last_seq()
        for req in batch:
            params = req.events.params
            if (
                req.expected_version is not None
                and self._head(params[STREAM], heads) != req.expected_version
            ):
                return None
            # Sequences, stamps and (for one stream) versions by slice assignment, in C.
            n = len(params) // ROW_WIDTH
            if n == 0:  # a checkpoint or dead letters only
                continue
            streams = params[STREAM::ROW_WIDTH]
            seqs = range(seq + 1, seq + n + 1)
            params[SEQ::ROW_WIDTH] = seqs
            params[COMMITTED_NS::ROW_WIDTH] = [committed_ns] * n
            if streams.count(streams[0]) == n:  # one stream: its versions run on from its head
                head = self._head(streams[0], heads)
                params[VERSION::ROW_WIDTH] = range(head + 1, head + n + 1)
                heads[streams[0]] = head + n
            else:
                versions = []
                for stream in streams:
                    version = (heads[stream] if stream in heads else self._head(stream, heads)) + 1
                    heads[stream] = version
                    versions.append(version)
                params[VERSION::ROW_WIDTH] = versions
            tails.update(zip(streams, seqs, strict=True))  # the last seq of each stream wins
            seq += n
        conn = self._conn
        before = conn.total_changes
        if len(batch) == 1:
            self._chunk.insert(batch[0].events.params)
        else:
            self._chunk.insert(list(chain.from_iterable(req.events.params for req in batch)))
        if conn.total_changes - before != seq - first:
            return None  # the caller rolls back and retries on the slow path
        self._seq = seq
        self._write_heads(heads, tails)
        self.events_written += seq - first
        for req in batch:
            params = req.events.params
            req.outcome = AppendResults(
                params[SEQ::ROW_WIDTH], params[STREAM::ROW_WIDTH], params[VERSION::ROW_WIDTH]
            )
        return heads

    def _slow_path(self, batch: list[AppendRequest], committed_ns: int) -> dict[str, int]:
        conn = self._conn
        heads: dict[str, int] = {}
        tails: dict[str, int] = {}
        seen: dict[str, AppendResult] = {}
        for req in batch:
            results: list[AppendResult | None] = []
            fresh: list[tuple[int, list[Any]]] = []
            for i, row in enumerate(req.events.rows()):
                key = row[KEY]
                dup = seen.get(key) if key is not None else None
                if dup is None and key is not None:
                    found = conn.execute(
                        "SELECT seq, stream, version FROM events WHERE key = ?", (key,)
                    ).fetchone()
                    if found is not None:
                        dup = AppendResult(*found)
                if dup is not None:
                    results.append(AppendResult(dup.seq, dup.stream, dup.version, duplicate=True))
                else:
                    results.append(None)
                    fresh.append((i, row))
            if fresh and req.expected_version is not None:
                stream = fresh[0][1][STREAM]
                actual = self._head(stream, heads)
                if actual != req.expected_version:
                    req.outcome = ConcurrencyError(stream, req.expected_version, actual)
                    continue
            for i, row in fresh:
                stream, key = row[STREAM], row[KEY]
                if key is not None and key in seen:  # same key twice in one request
                    dup = seen[key]
                    results[i] = AppendResult(dup.seq, dup.stream, dup.version, duplicate=True)
                    continue
                version = self._head(stream, heads) + 1
                seq = self._last_seq() + 1
                row[VERSION] = version
                row[COMMITTED_NS] = committed_ns
                row[SEQ] = seq
                conn.execute(_INSERT_EVENT, row)
                heads[stream] = version
                tails[stream] = self._seq = seq
                self.events_written += 1
                result = AppendResult(seq, stream, version)
                results[i] = result
                if key is not None:
                    seen[key] = result
            req.outcome = AppendResults.of([r for r in results if r is not None])
        self._write_heads(heads, tails)
        return heads

    def _write_side_records(self, req: AppendRequest, committed_ns: int) -> None:
        conn = self._conn
        if req.dead_letters:
            deadletters.insert(conn, req.dead_letters, committed_ns)
        if req.resolves:
            assert isinstance(req.outcome, AppendResults)
            outcome = req.outcome
            deadletters.resolve(conn, [(dl_id, outcome[i].seq) for dl_id, i in req.resolves])
        if req.checkpoint is not None:
            assert isinstance(req.outcome, AppendResults)
            last_seq = req.outcome.last_seq
            conn.execute(
                _UPSERT_CHECKPOINT,
                (
                    req.checkpoint.source,
                    orjson.dumps(req.checkpoint.position).decode(),
                    last_seq,
                    committed_ns,
                ),
            )

    def _settle(self, batch: list[AppendRequest], last_seq: int | None) -> None:
        """Hand each request its outcome: concurrent futures here, asyncio futures (and commit
        listeners) with one call_soon_threadsafe per event loop (at once for the loop of this
        thread: an inline commit)."""
        self._done(len(batch))
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        by_loop: dict[asyncio.AbstractEventLoop, list[AppendRequest]] = {}
        for req in batch:
            if req.loop is None:
                assert isinstance(req.future, concurrent.futures.Future)
                _resolve(req)
            elif req.loop in by_loop:
                by_loop[req.loop].append(req)
            else:
                by_loop[req.loop] = [req]
        listeners = self._listeners if last_seq is not None else []
        for loop, _ in listeners:
            by_loop.setdefault(loop, [])
        for loop, reqs in by_loop.items():
            callbacks = [cb for lp, cb in listeners if lp is loop]
            if loop is here:
                _settle_in_loop(reqs, callbacks, last_seq)
                continue
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_settle_in_loop, reqs, callbacks, last_seq)


def _resolve(req: AppendRequest) -> None:
    """Settle the request's future (in the thread or loop it belongs to) with its outcome."""
    if isinstance(req.outcome, BaseException):
        req.future.set_exception(req.outcome)
    else:
        req.future.set_result(NO_RESULTS if req.outcome is None else req.outcome)


def _settle_in_loop(
    reqs: list[AppendRequest], callbacks: list[Callable[[int], None]], last_seq: int | None
) -> None:
    for req in reqs:
        if not req.future.done():  # done: the caller was cancelled; the append still happened
            _resolve(req)
    if last_seq is not None:
        for cb in callbacks:
            cb(last_seq)


class _RowChunks:
    """Inserts flat parameter lists (ROW_WIDTH per row) with ON CONFLICT (key) DO NOTHING, in
    order: whole chunks as multi-row statements (as many rows as the connection's parameter
    limit allows, up to ROWS_PER_STATEMENT), the rest with executemany."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self.rows = max(1, min(ROWS_PER_STATEMENT, limit // ROW_WIDTH))
        self._sql = _values_sql(_EVENTS_HEAD, ROW_WIDTH, self.rows, _SKIP_KNOWN_KEY)
        self._small = {
            k: _values_sql(_EVENTS_HEAD, ROW_WIDTH, k, _SKIP_KNOWN_KEY)
            for k in range(1, min(SMALL_ROWS, self.rows) + 1)
        }

    def insert(self, params: list[Any]) -> None:
        step = self.rows * ROW_WIDTH
        chunked = len(params) - len(params) % step
        for i in range(0, chunked, step):
            self._conn.execute(self._sql, params[i : i + step])
        rest = (len(params) - chunked) // ROW_WIDTH
        if rest in self._small:
            self._conn.execute(self._small[rest], params[chunked:] if chunked else params)
        elif rest:
            self._conn.executemany(
                _INSERT_EVENT_FAST,
                (params[i : i + ROW_WIDTH] for i in range(chunked, len(params), ROW_WIDTH)),
            )
