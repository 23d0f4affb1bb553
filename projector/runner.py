"""The async projector: catches DuckDB up with the log, follows it live, rebuilds blue-green.

All DuckDB work for the read-write connection runs on one dedicated thread (an executor of one
worker), so the event loop never waits on DuckDB; queries use their own cursors on other threads."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar

import duckdb

from evlog.eventlog.store import LogStore
from evlog.system.writeback import lower_this_threads_priority

from .batch import EventBatch
from .errors import ProjectionError
from .generation import Generation
from .projection import Projection
from .query import QueryResult, run_query
from .readahead import ReadAhead
from .registry import all_projections
from .store import AnalyticsStore

log_ = logging.getLogger("evlog.projector")

P = ParamSpec("P")
T = TypeVar("T")

FOLLOW_BATCH = 5_000
CATCH_UP_BATCH = 20_000
REBUILD_BATCH = 50_000
FLUSH_EVERY_S = 1.0
# While a rebuild or a catch-up writes many rows, DuckDB checkpoints only past this much WAL
# (16 MB by default: a checkpoint at nearly every commit of a rebuild, docs/performance.md#duckdb).
BULK_CHECKPOINT_THRESHOLD = "256MB"
# The least time between two live batches: a gap shares a batch's fixed cost among more events
# at the price of that much latency (docs/performance.md#hot-tier has the figures).
FOLLOW_GAP_S = 0.001
# ...longer as batches grow (by this much per event in the last batch, up to the most): under
# load a batch's fixed costs are shared by more events, while a trickle keeps the least gap.
FOLLOW_GAP_PER_EVENT_S = 0.0001
FOLLOW_GAP_MAX_S = 0.003
FLUSH_NICE = 10  # the flusher's nice value (background queries: BACKGROUND_NICE)
QUERY_THREADS = 2
BACKGROUND_NICE = 19


@dataclass(slots=True)
class Progress:
    """Reported while catching up or rebuilding: `done` of `total` events for `what`."""

    what: str
    done: int
    total: int


ProgressCallback = Callable[[Progress], None]


class Projector:
    """Streams the log into DuckDB, exactly once: open with `await Projector.open(log, path)`,
    then `catch_up()` (apply everything committed), `follow()` (and keep applying new events as
    they commit), `rebuild(names)` (fill new generations beside the live ones, then swap),
    `query(sql)` (read-only SQL on the live tables), `subscribe(callback)` (live batches)."""

    def __init__(
        self,
        log: LogStore,
        store: AnalyticsStore,
        projections: list[Projection],
        executor: concurrent.futures.ThreadPoolExecutor,
        *,
        flush_every: float,
    ) -> None:
        self.log = log
        self.store = store
        self.projections = projections
        self._executor = executor
        self.live: dict[str, Generation] = {}
        self._apply_lock = asyncio.Lock()
        # Awaited, never waited on: a caller beyond QUERY_THREADS waits its turn on the loop
        # (a blocking get would hold the loop while every cursor is busy).
        self._query_cursors: asyncio.Queue[duckdb.DuckDBPyConnection] = asyncio.Queue()
        self._query_executor = concurrent.futures.ThreadPoolExecutor(
            QUERY_THREADS, thread_name_prefix="evlog-query"
        )
        # Reads nobody waits for (the live page's panels): a thread at the lowest priority, so
        # that on a busy machine they take the CPU the live path leaves.
        self._background_executor = concurrent.futures.ThreadPoolExecutor(
            1, "evlog-query-bg", lower_this_threads_priority, (BACKGROUND_NICE,)
        )
        self._flush_every = flush_every
        self._flusher: threading.Thread | None = None
        self._closing = threading.Event()
        self._views_version = 0
        self._cursor_views: dict[int, int] = {}
        # Queries in flight by the views version they read, and the generations a swap retired
        # (with the version that retired them): dropped once no query reads an older version.
        self._reads_at: collections.Counter[int] = collections.Counter()
        self._retired: list[tuple[int, str, int]] = []
        self._live = asyncio.Event()  # set once `follow` has caught up: new events are live
        self._dropping: set[asyncio.Task[None]] = set()
        # Called with every live batch once it is visible (metrics, a UI): see subscribe().
        self._subscribers: list[Callable[[EventBatch], None]] = []
        self.applied_events = 0
        self.applied_batches = 0
        self.last_projected_ns = 0
        self._bulk_depth = 0  # bulk work running (_bulk), and the threshold it put aside
        self._threshold_before = ""
        self.flushes: list[float] = []  # seconds each flush to the file took
        self._advanced = asyncio.Event()  # replaced after every apply; waiters hold the old one

    @classmethod
    async def open(
        cls,
        log: LogStore,
        path: Path | str,
        projections: list[Projection] | None = None,
        *,
        flush_every: float = FLUSH_EVERY_S,
        progress: ProgressCallback | None = None,
    ) -> Self:
        """Open (or create) the analytics file and bring every projection to a known state:
        missing ones are created, half-built ones dropped, version bumps rebuilt."""
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="evlog-duckdb")
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(executor, lambda: AnalyticsStore(path))
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self = cls(
            log,
            store,
            projections or all_projections(),
            executor,
            flush_every=flush_every,
        )
        try:
            log_id = await log.log_id()
            recorded = await self._duck(store.source_log, log_id)
            if log_id is not None and recorded != log_id:
                raise ProjectionError(
                    f"{path}: its tables were projected from another log ({recorded}, not"
                    f" {log.where}); give this log its own --duckdb, or move the file aside"
                )
            for _ in range(QUERY_THREADS):
                self._query_cursors.put_nowait(await self._duck(store.con.cursor))
            await self._reconcile(progress)
        except BaseException:
            await self.close()
            raise
        if flush_every > 0:
            self._flusher = threading.Thread(
                target=self._flush_loop, args=(await self._duck(store.con.cursor),),
                name="evlog-duckdb-flush", daemon=True,
            )  # fmt: skip
            self._flusher.start()
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the flusher (flushing what is hot first) and close the DuckDB file."""
        self._closing.set()
        if self._flusher is not None:
            await asyncio.to_thread(self._flusher.join)  # it flushes what is left, then exits
        self._query_executor.shutdown(wait=True)
        self._background_executor.shutdown(wait=True)
        if self._dropping:
            await asyncio.gather(*self._dropping, return_exceptions=True)
        self._reads_at.clear()  # no query runs any more: what a swap retired goes now
        await self._drop_unread()
        while not self._query_cursors.empty():
            cur = self._query_cursors.get_nowait()
            await self._duck(cur.close)
        await self._duck(self.store.close)
        self._executor.shutdown(wait=True)

    async def _duck(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    # -- state -----------------------------------------------------------------------------------

    @property
    def position(self) -> int:
        """The last sequence every live projection has applied."""
        return min((g.position for g in self.live.values()), default=0)

    async def wait_for(self, seq: int) -> None:
        """Return once every live projection has applied the log up to `seq`."""
        while self.position < seq:
            await self._advanced.wait()

    async def _reconcile(self, progress: ProgressCallback | None) -> None:
        dropped = await self._duck(self.store.drop_abandoned)
        for d in dropped:
            log_.warning("dropped the half-built generation %s left by an interrupted rebuild", d)
        stale: list[Projection] = []
        for p in self.projections:
            state = await self._duck(self.store.live_state, p.name)
            if state is None:
                gen = await self._duck(self.store.create_generation, p, 1, "building")
                await self._duck(self.store.publish, gen)
                self.live[p.name] = gen
                self._views_version += 1
                continue
            version, generation = state
            position = await self._duck(self.store.position, p.name, generation)
            gen = Generation(p, generation, version, position)
            await self._duck(self.store.open_hot, gen)
            self.live[p.name] = gen
            if version == p.version:
                continue
            steps = p.upgrade_steps(version)
            if steps is None:
                stale.append(p)
                continue
            log_.info("projection %s: upgraded in place from version %d", p.name, version)
            await self._duck(self.store.upgrade, gen, steps)
            self._views_version += 1
        if stale:
            log_.warning("projection version changed, rebuilding: %s", [p.name for p in stale])
            await self.rebuild([p.name for p in stale], progress=progress)

    # -- applying --------------------------------------------------------------------------------

    async def _read(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        rows = await self.log.read_rows(after, limit)
        if rows:
            await self._check_contiguous(after, rows)
        return rows

    async def _check_contiguous(self, after: int, rows: Sequence[tuple[Any, ...]]) -> None:
        """Sequences come from the log in order without holes; a hole is accepted only if the
        log itself lacks those events (rows deleted by hand), never silently."""
        first, last = rows[0][0], rows[-1][0]
        if first == after + 1 and last - first + 1 == len(rows):
            return
        seqs = [r[0] for r in rows]
        if seqs != sorted(set(seqs)) or first <= after:
            raise ProjectionError(f"log returned events out of order after seq {after}")
        if self.log.contiguous_seqs:  # else holes are the log's own records (JetStream)
            log_.warning(
                "the log has no events for some seqs in %d..%d; skipping them", after, last
            )

    async def _apply(
        self, gens: list[Generation], rows: Sequence[tuple[Any, ...]], *, hot: bool, mode: str
    ) -> EventBatch:
        batch = EventBatch(rows, mode=mode)
        await self._duck(self.store.apply, gens, batch, hot=hot)
        self.applied_events += len(rows)
        self.applied_batches += 1
        self.last_projected_ns = batch.projected_ns
        self._notify()
        return batch

    @contextlib.asynccontextmanager
    async def _bulk(self) -> AsyncIterator[None]:
        """Fewer checkpoints while bulk work runs (BULK_CHECKPOINT_THRESHOLD); the threshold
        is put back after, and the next commit past it checkpoints what accumulated (the
        flusher's, off the live path, when a follower runs)."""
        self._bulk_depth += 1
        if self._bulk_depth == 1:
            self._threshold_before = await self._duck(
                self.store.checkpoint_threshold, BULK_CHECKPOINT_THRESHOLD
            )
        try:
            yield
        finally:
            self._bulk_depth -= 1
            if self._bulk_depth == 0:
                await self._duck(self.store.checkpoint_threshold, self._threshold_before)

    def _notify(self) -> None:
        self._advanced.set()
        self._advanced = asyncio.Event()

    async def catch_up(self, progress: ProgressCallback | None = None) -> int:
        """Apply everything the log has that the projections have not; returns events applied."""
        async with self._bulk():
            return await self._catch_up(progress)

    async def _catch_up(self, progress: ProgressCallback | None) -> int:
        applied = 0
        head = await self.log.head()
        start = self.position
        while True:
            async with self._apply_lock:
                lowest = self.position
                group = [g for g in self.live.values() if g.position == lowest]
                higher = [g.position for g in self.live.values() if g.position > lowest]
                limit = CATCH_UP_BATCH
                if higher:
                    limit = min(limit, min(higher) - lowest)
                rows = await self._read(lowest, limit)
                if not rows:
                    if higher:
                        raise ProjectionError(
                            f"analytics are ahead of the log (seq {max(higher)} > log head):"
                            " was the log replaced? run `evlog rebuild`"
                        )
                    break
                # Straight into the file while nothing is waiting in the hot tier (bulk path).
                hot = any(g.position != g.durable for g in group)
                await self._apply(group, rows, hot=hot, mode="catch-up")
            applied += len(rows)
            if progress is not None:
                progress(Progress("catch-up", self.position - start, max(head - start, 1)))
        return applied

    @contextlib.asynccontextmanager
    async def keeping_up(self, appended: asyncio.Event) -> AsyncIterator[None]:
        """For a producer in this process (`evlog ingest --project`): while the body appends
        to the log, apply what the log gains in catch-up batches, woken by `appended` (set it
        after each append); on a clean exit, return once everything appended is applied. The
        projection overlaps the reading instead of following it."""
        done = asyncio.Event()

        async def keep_up() -> None:
            # Not in bulk mode (catch_up's raised checkpoint threshold): DuckDB checkpoints as
            # it goes, while the reading still runs, instead of all at once at the end.
            while not done.is_set():
                appended.clear()
                await self._catch_up(None)
                wakers = [asyncio.ensure_future(e.wait()) for e in (appended, done)]
                _, pending = await asyncio.wait(wakers, return_when=asyncio.FIRST_COMPLETED)
                for w in pending:
                    w.cancel()
            await self._catch_up(None)

        task = asyncio.create_task(keep_up())
        try:
            yield
        except BaseException:
            task.cancel()
            # The body's failure is the one raised, not the projector's (if it had one too).
            await asyncio.gather(task, return_exceptions=True)
            raise
        done.set()
        await task

    def subscribe(self, callback: Callable[[EventBatch], None]) -> None:
        """Have `callback(batch)` called on the event loop with every batch `follow` makes
        visible (not catch-up or rebuild batches). It must be quick and must not raise."""
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[EventBatch], None]) -> None:
        """Stop calling `callback` (see subscribe)."""
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    async def follow(self, on_batch: Callable[[EventBatch], None] | None = None) -> None:
        """Catch up, then apply new events as they are committed, until cancelled."""
        await self.catch_up()
        self._live.set()
        async with aclosing(self.log.follow_rows(self.position, batch_limit=FOLLOW_BATCH)) as it:
            async for rows in it:
                async with self._apply_lock:
                    pos = self.position
                    rows = [r for r in rows if r[0] > pos]  # a rebuild may have moved us on
                    if not rows:
                        continue
                    await self._check_contiguous(pos, rows)
                    # flush_every=0: straight into the file (it stalls: docs/performance.md#duckdb).
                    hot = self._flush_every > 0
                    batch = await self._apply(list(self.live.values()), rows, hot=hot, mode="live")
                for subscriber in self._subscribers:
                    subscriber(batch)
                if on_batch is not None:
                    on_batch(batch)
                if len(rows) < FOLLOW_BATCH:
                    # Commits that land meanwhile share the next batch: every batch has a fixed
                    # cost (a read, two thread hops), and at 1k events/s each was one event.
                    gap = min(FOLLOW_GAP_MAX_S, len(rows) * FOLLOW_GAP_PER_EVENT_S)
                    await asyncio.sleep(max(FOLLOW_GAP_S, gap))

    async def until_live(self) -> None:
        """Return once `follow` has caught up: every event committed from then on is applied
        as it comes (a live batch, with its latency measured), not in a catch-up."""
        await self._live.wait()

    # -- rebuilding ------------------------------------------------------------------------------

    async def rebuild(
        self,
        names: list[str] | None = None,
        *,
        from_seq: int = 0,
        progress: ProgressCallback | None = None,
    ) -> dict[str, int]:
        """Rebuild projections from the log into new generations beside the live ones, in one
        pass over the log, then swap them in. Readers keep the old tables until the swap.
        Returns events replayed per projection."""
        async with self._bulk():
            return await self._rebuild(names, from_seq, progress)

    async def _rebuild(
        self, names: list[str] | None, from_seq: int, progress: ProgressCallback | None
    ) -> dict[str, int]:
        chosen = [p for p in self.projections if names is None or p.name in names]
        if not chosen:
            return {}
        fresh: list[Generation] = []
        for p in chosen:
            old = self.live.get(p.name)  # None: a projection added while running
            number = await self._duck(self.store.next_generation, p.name)
            gen = await self._duck(self.store.create_generation, p, number, "building")
            if from_seq > 0:
                if old is None or old.version != p.version or from_seq > old.position:
                    why = (
                        "have another version"
                        if old is not None and old.version != p.version
                        else "are not there"
                    )
                    raise ProjectionError(
                        f"cannot rebuild {p.name} from seq {from_seq}: the live tables {why}"
                    )
                await self._duck(self.store.copy_prefix, old, gen, from_seq)
            fresh.append(gen)
        # Old rows of another shape cannot be fed by the new code: they stop until the swap.
        frozen = {
            g.projection.name
            for g in fresh
            if (old := self.live.get(g.projection.name)) is not None and old.version != g.version
        }
        for name in frozen:
            self.live.pop(name)
        head = await self.log.head()
        start = position = from_seq
        replayed = 0
        ahead = ReadAhead(self._read)  # the next batch read while one is applied
        try:
            while True:
                async with self._apply_lock:
                    if position >= head:
                        # The log as it was when we started is in. What the live generations took in
                        # since then is replayed under the lock, which holds them still, so this
                        # ends: chasing a moving live position in small batches need not (a
                        # batch's fixed cost can outrun a steady producer).
                        target = max(head, self.position if self.live else 0)
                        while position < target:
                            position, n = await self._replay_batch(fresh, position, target, ahead)
                            replayed += n
                        retired = []
                        for gen in fresh:
                            replaced = await self._duck(self.store.publish, gen)
                            retired += [(gen.projection.name, g) for g in replaced]
                            self.live[gen.projection.name] = gen
                        self._views_version += 1
                        self._retired += [(self._views_version, n, g) for n, g in retired]
                        self._notify()
                        break
                position, n = await self._replay_batch(fresh, position, head, ahead)
                replayed += n
                if progress is not None:
                    progress(Progress("rebuild", position - start, max(head - start, 1)))
        finally:
            await ahead.aclose()
        await self._drop_unread()
        await self._duck(self.store.compact_progress)
        return {g.projection.name: replayed for g in fresh}

    async def _drop_unread(self) -> None:
        """Drop the retired generations no query in flight may still read: those retired at
        or before the oldest views version a query in flight reads."""
        oldest = min(self._reads_at, default=self._views_version)
        due = [r for r in self._retired if r[0] <= oldest]
        if not due:
            return
        self._retired = [r for r in self._retired if r[0] > oldest]
        for _, name, generation in due:
            await self._duck(self.store.drop_retired, name, generation)

    async def _replay_batch(
        self, gens: list[Generation], position: int, target: int, ahead: ReadAhead
    ) -> tuple[int, int]:
        """Apply the next events after `position` (up to `target`) to `gens`, while `ahead`
        reads the ones after them; returns the last sequence applied and how many events."""
        rows = await ahead.read(position, min(REBUILD_BATCH, target - position))
        if not rows:
            raise ProjectionError(f"the log ends before seq {target} while rebuilding")
        last = rows[-1][0]
        ahead.ahead(last, min(REBUILD_BATCH, target - last))
        await self._duck(self.store.apply, gens, EventBatch(rows, mode="rebuild"))
        return last, len(rows)

    async def update_projections(
        self, projections: list[Projection], progress: ProgressCallback | None = None
    ) -> dict[str, str]:
        """Maintain `projections` from now on: new ones are built from the start of the log
        beside the live ones, changed ones (another version) rebuilt blue-green, and ones no
        longer listed stop being followed (their tables stay, as they were). Returns what
        happened to each name that changed."""
        current = {p.name: p for p in self.projections}
        wanted = {p.name: p for p in projections}
        added = [n for n in wanted if n not in current]
        changed = [n for n in wanted if n in current and wanted[n].version != current[n].version]
        removed = [n for n in current if n not in wanted]
        self.projections = list(projections)
        for name in removed:
            self.live.pop(name, None)
        if added or changed:
            await self.rebuild(added + changed, progress=progress)
        return (
            {n: "added" for n in added}
            | {n: "rebuilt" for n in changed}
            | {n: "no longer followed (its tables stay)" for n in removed}
        )

    # -- housekeeping and queries ----------------------------------------------------------------

    def _flush_loop(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Move hot rows to the file every `flush_every` seconds, on this thread's own cursor,
        so file commits (and the checkpoints DuckDB runs inside them) stay off the live path.
        On close, one last flush leaves everything in the file. At a lower priority: a
        flush is a burst of CPU that the live path must not wait behind
        (docs/performance.md#hot-tier)."""
        lower_this_threads_priority(FLUSH_NICE)

        def still_live(gen: Generation) -> bool:
            return self.live.get(gen.projection.name) is gen  # not swapped out

        try:
            while True:
                closing = self._closing.wait(self._flush_every)
                t0 = time.perf_counter()
                try:
                    if self.store.flush_live(list(self.live.values()), cur, still_live):
                        self.flushes.append(time.perf_counter() - t0)
                except duckdb.Error as exc:
                    log_.warning("flush to the file failed, will retry: %s", exc)
                if closing:
                    return
        finally:
            cur.close()

    async def query(
        self, sql: str, *, max_rows: int | None = None, background: bool = False
    ) -> QueryResult:
        """A read-only query on its own cursor (another thread), concurrent with applying;
        `background`: on the lowest-priority query thread (see run_read)."""
        return await self.run_read(
            lambda cur: run_query(cur, sql, max_rows=max_rows), background=background
        )

    async def run_read(
        self, fn: Callable[[duckdb.DuckDBPyConnection], T], *, background: bool = False
    ) -> T:
        """`fn(cursor)` in a query thread, on a cursor that sees hot and cold rows. For library
        callers that read; the cursor must not be used to write. `background`: on a thread at
        the lowest priority, one at a time (DuckDB's own worker threads keep theirs)."""
        cur = await self._query_cursors.get()
        version = self._views_version
        gens = list(self.live.values())
        self._reads_at[version] += 1
        try:
            loop = asyncio.get_running_loop()

            def go() -> T:
                self.store.register_hot(cur, gens)  # the hot rows as of now
                if self._cursor_views.get(id(cur)) != version:
                    self.store.union_views(cur, gens)
                    self._cursor_views[id(cur)] = version
                return fn(cur)

            executor = self._background_executor if background else self._query_executor
            return await loop.run_in_executor(executor, go)
        finally:
            self._query_cursors.put_nowait(cur)
            self._reads_at[version] -= 1
            if not self._reads_at[version]:
                del self._reads_at[version]
                if self._retired and not self._closing.is_set():
                    # Not awaited here: the answer need not wait for a DROP.
                    task = asyncio.get_running_loop().create_task(self._drop_unread())
                    self._dropping.add(task)
                    task.add_done_callback(self._dropping.discard)

    async def lag(self) -> tuple[int, int, float]:
        """(log head, events committed but not yet applied, age in seconds of the oldest)."""
        return await self.log.behind(self.position)

    async def status(self) -> dict[str, Any]:
        """Log head, position, lag, and each live projection's generation, version, position
        and durable position (the query socket's status request)."""
        head = await self.log.head()  # not lag(): its age costs a read that status does not show
        return {
            "log_head": head,
            "position": self.position,
            "lag_events": head - self.position,
            "projections": {
                name: {
                    "generation": g.generation,
                    "version": g.version,
                    "position": g.position,
                    "durable": g.durable,
                }
                for name, g in self.live.items()
            },
            "applied_events": self.applied_events,
            "applied_batches": self.applied_batches,
        }
