"""The DuckDB side: generations of projection tables, a hot in-memory tier, and progress rows.

Every projection's tables live in a schema per generation (`evlog_<name>_g<N>`); the public
names (`events`, `messages`, ...) are views onto the live generation. A rebuild fills generation
N+1 beside the live one and swaps the views in one transaction, so readers never see empty
tables.

Live batches go to a *hot* tier (generation.py): per generation and table, a list of chunks in
memory, Arrow tables or Python columns (`PyRows`, what the built-in projections hand over, made
Arrow once for many batches); adding a batch costs microseconds, where a DuckDB statement per
table per batch costs about a millisecond (docs/performance.md#hot-tier). Query cursors see them
through the Arrow tables registered per query (cold UNION ALL hot). A flusher moves them to the
file (the *cold* tables) every second, together with the progress row that makes them durable,
in one transaction of the file. DuckDB checkpoints stall commits to the database they checkpoint
(docs/performance.md#duckdb), and only the flusher commits to the file, so the live path never
waits for a checkpoint. A crash loses only hot rows, which are re-read from the log after the
durable progress: exactly once."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeAlias

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .arrow import cast_like_duckdb, finish_pending, query_arrow
from .batch import EVENT_SCHEMA, EventBatch
from .generation import EVENTS, PY_CHUNK_ROWS, Generation, PyRows, schema_name
from .projection import LiveColumns, Projection
from .query import SAFE_CONFIG

POSITIONS = "evlog_hot_positions"  # each live generation's position, registered per query
HotRows: TypeAlias = pa.Table | LiveColumns | PyRows

CATALOG = (
    """CREATE TABLE IF NOT EXISTS evlog_projection_state (
        name VARCHAR, version INTEGER, generation INTEGER, status VARCHAR, changed_ns BIGINT)""",
    """CREATE TABLE IF NOT EXISTS evlog_progress (
        name VARCHAR, generation INTEGER, last_seq BIGINT, events INTEGER, projected_ns BIGINT)""",
    # The log these tables were projected from (LogStore.log_id).
    "CREATE TABLE IF NOT EXISTS evlog_source_log (log_id VARCHAR)",
)


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT, or ROLLBACK on any failure. A failed ROLLBACK (the transaction is
    already gone, e.g. after a full disk) never hides the error that caused it."""
    con.execute("BEGIN")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


class AnalyticsStore:
    """Owns the read-write DuckDB connection. `con` is used by one thread; the flusher has its
    own cursor; `lock` orders flushes against generation changes."""

    def __init__(self, path: Path | str, *, checkpoint_threshold: str | None = None) -> None:
        """`path` may be ":memory:" (used as a baseline by bench/e2e)."""
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # No file or network access, no extension loaded: the queries of users and projection
        # files that run on this database can reach nothing else (projector/query.py).
        self.con = duckdb.connect(str(path), config=SAFE_CONFIG)
        if checkpoint_threshold:
            self.con.execute(f"SET checkpoint_threshold = '{checkpoint_threshold}'")
        for ddl in CATALOG:
            self.con.execute(ddl)
        self.lock = threading.Lock()
        self.hot_lock = threading.Lock()  # orders hot appends against query registrations
        # The open chunk of events shared by generations (_shared_events), and who holds it.
        self._events: PyRows | None = None
        self._events_holders: list[tuple[Generation, str]] = []

    def checkpoint_threshold(self, value: str) -> str:
        """Set the database's checkpoint threshold (DuckDB checkpoints once its WAL is past
        it); returns the one before."""
        before = self.con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()
        self.con.execute(f"SET checkpoint_threshold = '{value}'")
        return str(before[0]) if before else value

    def close(self) -> None:
        """Close the DuckDB connection (the file stays as it is: committed rows are durable)."""
        self.con.close()

    # -- state -----------------------------------------------------------------------------------

    def source_log(self, log_id: str | None) -> str | None:
        """The log these tables come from; a file that records none yet takes `log_id`."""
        row = self.con.execute("SELECT log_id FROM evlog_source_log LIMIT 1").fetchone()
        if row is not None:
            return str(row[0])
        if log_id is not None:
            self.con.execute("INSERT INTO evlog_source_log VALUES (?)", [log_id])
        return log_id

    def live_state(self, name: str) -> tuple[int, int] | None:
        """(version, generation) of the live generation of `name`, if any."""
        row = self.con.execute(
            "SELECT version, generation FROM evlog_projection_state"
            " WHERE name = ? AND status = 'live' ORDER BY generation DESC LIMIT 1",
            [name],
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def position(self, name: str, generation: int) -> int:
        """The last sequence generation `generation` of `name` has durably applied (its
        progress rows in the file)."""
        row = self.con.execute(
            "SELECT coalesce(max(last_seq), 0) FROM evlog_progress"
            " WHERE name = ? AND generation = ?",
            [name, generation],
        ).fetchone()
        return int(row[0]) if row else 0

    def next_generation(self, name: str) -> int:
        """A generation number not used by any generation of `name` recorded in the file."""
        row = self.con.execute(
            "SELECT coalesce(max(generation), 0) FROM evlog_projection_state WHERE name = ?",
            [name],
        ).fetchone()
        return int(row[0] if row else 0) + 1

    def drop_abandoned(self) -> list[str]:
        """Remove generations a crashed rebuild left half-built, and those a swap retired that
        queries still read when the process stopped."""
        rows = self.con.execute(
            "SELECT name, generation FROM evlog_projection_state"
            " WHERE status IN ('building', 'retired')"
        ).fetchall()
        for name, gen in rows:
            self._drop_generation(name, gen)
        return [f"{n}#{g}" for n, g in rows]

    # -- generations -----------------------------------------------------------------------------

    def create_generation(self, projection: Projection, generation: int, status: str) -> Generation:
        """Make an empty generation of `projection` (its schema and tables) and record it with
        `status` ('building' or 'live'); an old schema of that number is dropped first."""
        schema = schema_name(projection.name, generation)
        with transaction(self.con):
            self.con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            self.con.execute(f'CREATE SCHEMA "{schema}"')
            for table in projection.tables:
                self.con.execute(f'CREATE TABLE "{schema}"."{table.name}" ({table.columns})')
            self.con.execute(
                "DELETE FROM evlog_progress WHERE name = ? AND generation = ?",
                [projection.name, generation],
            )
            self.con.execute(
                "INSERT INTO evlog_projection_state VALUES (?, ?, ?, ?, ?)",
                [projection.name, projection.version, generation, status, time.time_ns()],
            )
        return Generation(projection, generation, projection.version, 0)

    def open_hot(self, gen: Generation) -> None:
        """Start the (empty) hot tier of a live generation: the Arrow schema of each table, as
        DuckDB exports its columns (and, for a per-event projection, its events)."""
        if gen.per_event:
            gen.open_hot(EVENTS, EVENT_SCHEMA, "")
        for table in gen.projection.tables:
            schema = query_arrow(self.con, f"SELECT * FROM {gen.cold(table.name)} LIMIT 0")
            types = self.con.execute(
                "SELECT column_name, data_type FROM duckdb_columns()"
                " WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
                [gen.schema, table.name],
            ).fetchall()
            select = ", ".join(f'CAST("{c}" AS {t})' for c, t in types)
            gen.open_hot(table.name, schema.schema, select, rows=not gen.per_event)

    def upgrade(self, gen: Generation, statements: list[str]) -> None:
        """Bring a live generation's tables to its projection's version in place (`upgrades`),
        then publish it again with that version's views."""
        names = {t.name: gen.cold(t.name) for t in gen.projection.tables}
        with transaction(self.con):
            for statement in statements:
                self.con.execute(statement.format(**names))
        gen.version = gen.projection.version
        self.publish(gen)

    def publish(self, gen: Generation) -> list[int]:
        """Point the public views at `gen` and mark it live; the generations it replaces are
        marked retired and returned, to be dropped (`drop_retired`) once no query that started
        before the swap still reads them (a query bound to their tables would fail)."""
        name = gen.projection.name
        old = self.con.execute(
            "SELECT generation FROM evlog_projection_state WHERE name = ? AND generation <> ?",
            [name, gen.generation],
        ).fetchall()
        with self.lock:
            self.open_hot(gen)
            with transaction(self.con):
                for table in gen.projection.tables:
                    self.con.execute(
                        f'CREATE OR REPLACE VIEW main."{table.name}" AS'
                        f" SELECT * FROM {gen.cold(table.name)}"
                    )
                for view, sql in gen.projection.views.items():
                    self.con.execute(f'CREATE OR REPLACE VIEW main."{view}" AS {sql}')
                for macro, sql in gen.projection.macros.items():
                    self.con.execute(f"CREATE OR REPLACE MACRO main.{macro} AS TABLE {sql}")
                self.con.execute(
                    "UPDATE evlog_projection_state SET status = 'retired'"
                    " WHERE name = ? AND generation <> ?",
                    [name, gen.generation],
                )
                self.con.execute(
                    "DELETE FROM evlog_projection_state WHERE name = ? AND generation = ?",
                    [name, gen.generation],
                )
                self.con.execute(
                    "INSERT INTO evlog_projection_state VALUES (?, ?, ?, 'live', ?)",
                    [name, gen.version, gen.generation, time.time_ns()],
                )
        return [int(g) for (g,) in old]

    def drop_retired(self, name: str, generation: int) -> None:
        """Drop a generation a swap retired (its schema and its record)."""
        self._drop_generation(name, generation)

    def _drop_generation(self, name: str, generation: int) -> None:
        schema = schema_name(name, generation)
        self.con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.con.execute(
            "DELETE FROM evlog_projection_state WHERE name = ? AND generation = ?",
            [name, generation],
        )
        self.con.execute(
            "DELETE FROM evlog_progress WHERE name = ? AND generation = ?", [name, generation]
        )

    def copy_prefix(self, source: Generation, target: Generation, upto_seq: int) -> None:
        """Start a rebuild from `upto_seq`: copy the rows of events up to it from `source`."""
        with transaction(self.con):
            # Registered by name: the database has no replacement scans of Python variables
            # (no external access: projector/query.py).
            hot = [(source.hot(n).strip('"'), source.hot_rows(n)) for n in source.hot_names()]
            for name, rows in hot:
                self.con.register(name, rows)
            try:
                for table in target.projection.tables:
                    self.con.execute(
                        f"INSERT INTO {target.cold(table.name)} SELECT * FROM ("
                        f" SELECT * FROM {source.cold(table.name)} UNION ALL"
                        f" {source.hot_sql(table.name, str(source.durable))}"
                        f") WHERE seq <= ?",
                        [upto_seq],
                    )
            finally:
                for name, _ in hot:
                    self.con.unregister(name)
            self._progress([target], upto_seq, 0, time.time_ns())
        target.advance(upto_seq, upto_seq)

    # -- applying --------------------------------------------------------------------------------

    def apply(self, gens: list[Generation], batch: EventBatch, *, hot: bool = False) -> None:
        """Rows of `batch` for every generation in `gens`. Cold: into the file, with progress
        rows, one transaction (the bulk path). Hot: each projection's rows as Arrow, appended
        to the in-memory tier of every generation at once (the live path: no DuckDB write)."""
        batch.projected_ns = time.time_ns()
        if hot:
            made: list[tuple[Generation, dict[str, HotRows]]] = []
            for gen in gens:
                if gen.per_event:
                    made.append((gen, {EVENTS: (EVENT_SCHEMA, batch.columns)}))
                    continue
                columns = gen.projection.live_columns(batch)
                if columns is not None:
                    made.append((gen, dict(columns)))
                else:
                    live = gen.projection.live_rows(self.con, batch)
                    made.append((gen, {t: self._conformed(gen, t, r) for t, r in live.items()}))
            # Rows that are the batch's events as they are (per-event projections, `events`)
            # go into one chunk all of those generations hold, made Arrow once for all.
            sharers = [
                (g, tables, t)
                for g, tables in made
                for t, r in tables.items()
                if isinstance(r, tuple) and r[0] is EVENT_SCHEMA and r[1] is batch.columns
            ]
            with self.hot_lock:  # every generation's rows become visible together
                if sharers:
                    shared = self._shared_events(batch, [(g, t) for g, _, t in sharers])
                    for _, tables, t in sharers:
                        tables[t] = shared
                for gen, tables in made:
                    gen.add_hot(tables, batch.last_seq)
            batch.visible_ns = time.time_ns()
            return
        with transaction(self.con):
            for gen in gens:
                gen.projection.apply(self.con, gen.cold, batch)
            self._progress(gens, batch.last_seq, len(batch), batch.projected_ns)
        batch.visible_ns = time.time_ns()
        for gen in gens:
            gen.advance(batch.last_seq, batch.last_seq)

    def _shared_events(self, batch: EventBatch, holders: list[tuple[Generation, str]]) -> PyRows:
        """The chunk that holds the batch's events for every (generation, table) in `holders`
        (the caller holds the hot lock): the open one, extended, while the same tables hold
        it (each holder then has every batch in it); else a new one. Made Arrow here once
        it holds PY_CHUNK_ROWS events, as generation.py does its own chunks."""
        same = len(holders) == len(self._events_holders) and all(
            g is h and t == u for (g, t), (h, u) in zip(holders, self._events_holders, strict=True)
        )
        if self._events is None or not same or not self._events.extend(batch.columns):
            self._events = PyRows(EVENT_SCHEMA, batch.columns)
            self._events_holders = holders
        if len(self._events) >= PY_CHUNK_ROWS:
            self._events.to_arrow(EVENT_SCHEMA)  # sealed: the next batch starts another
        return self._events

    def _conformed(self, gen: Generation, table: str, rows: pa.Table) -> pa.Table:
        """A projection's rows in the generation's hot schema (its columns by position, its
        types), so a table's chunks concatenate and union with the file's rows. Arrow casts
        what it can; DuckDB casts the rest, as an INSERT would."""
        schema = gen.hot_schemas[table]
        if rows.schema.equals(schema):
            return rows
        if rows.column_names != schema.names and rows.num_columns == len(schema.names):
            rows = rows.rename_columns(schema.names)
        try:
            return cast_like_duckdb(rows, schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError):
            finish_pending(self.con)
            self.con.register("evlog_conform", rows)
            try:
                out = self.con.sql(f"SELECT {gen.hot_select[table]} FROM evlog_conform")
                conformed = out.to_arrow_table()
            finally:
                self.con.unregister("evlog_conform")
            return conformed.rename_columns(schema.names).cast(schema)

    def flush_live(
        self,
        gens: list[Generation],
        cur: duckdb.DuckDBPyConnection,
        still: Callable[[Generation], bool],
    ) -> int:
        """`flush` the generations of `gens` for which `still(gen)` holds once the store's
        lock is taken (a rebuild may have swapped one out meanwhile)."""
        with self.lock:
            return self.flush([g for g in gens if still(g)], cur)

    def register_hot(self, cur: duckdb.DuckDBPyConnection, gens: list[Generation]) -> None:
        """Register every generation's hot rows on a query cursor, as they are now: all read
        under the hot lock, so a query sees a batch in every projection or in none."""
        register_hot(cur, gens, self.hot_lock)

    def flush(self, gens: list[Generation], cur: duckdb.DuckDBPyConnection) -> int:
        """Move hot rows up to each generation's position into the file, with their progress,
        in one transaction of the file for all of them (each commit of the file has a fixed
        cost); returns rows moved. Runs on the flusher's cursor."""
        due = [(g, *g.positions()) for g in gens]
        due = [(g, upto, done) for g, upto, done in due if upto > done]
        if not due:
            return 0
        moved = 0
        with transaction(cur):
            for gen, upto, done in due:
                moved += self._move_hot(gen, cur, upto, done)
            now = time.time_ns()
            rows = [
                (g.projection.name, g.generation, upto, upto - done, now) for g, upto, done in due
            ]
            insert_progress(cur, rows)
        for gen, upto, done in due:
            gen.advance(durable=upto)
            # Hot rows stay until the next flush: a query that registered them before this
            # commit and reads the file after it filters them out by the durable position it
            # sees (so no duplicate), and one that registered them earlier can never miss them.
            gen.drop_hot_through(done)
        return moved

    def _move_hot(
        self, gen: Generation, cur: duckdb.DuckDBPyConnection, upto: int, done: int
    ) -> int:
        """Insert `gen`'s hot rows of events in (done, upto] into its file tables."""
        moved = 0
        for name in gen.hot_names():  # its tables, or its events (per-event)
            rows = gen.hot_rows(name, done)
            seq = rows["seq"]
            rows = rows.filter(pc.and_(pc.greater(seq, done), pc.less_equal(seq, upto)))
            moved += rows.num_rows
            if not rows.num_rows:
                continue
            if name == EVENTS:  # made into the tables' rows by the projection's INSERTs
                gen.projection.apply_events(cur, gen.cold, rows)
                continue
            cur.register("evlog_flush", rows)  # by name: no replacement scans here
            try:
                cur.execute(f"INSERT INTO {gen.cold(name)} SELECT * FROM evlog_flush")
            finally:
                cur.unregister("evlog_flush")
        return moved

    def _progress(
        self, gens: list[Generation], last_seq: int, events: int, projected_ns: int
    ) -> None:
        rows = [(g.projection.name, g.generation, last_seq, events, projected_ns) for g in gens]
        insert_progress(self.con, rows)

    def compact_progress(self) -> None:
        """Keep one progress row per generation (the latest)."""
        with self.lock:
            self.con.execute(
                """DELETE FROM evlog_progress p WHERE last_seq < (
                    SELECT max(last_seq) FROM evlog_progress q
                    WHERE q.name = p.name AND q.generation = p.generation)"""
            )

    # -- reading both tiers ----------------------------------------------------------------------

    @staticmethod
    def union_views(cur: duckdb.DuckDBPyConnection, gens: list[Generation]) -> None:
        """Give a query cursor temp views that see cold and hot rows of the live generations;
        they shadow the stored views (which see the file only) for that cursor."""
        # Names qualified with the file's catalog: a view defined in another attached database
        # (a snapshot) binds unqualified names in that database.
        row = cur.execute("SELECT current_database()").fetchone()
        db = '"' + str(row[0] if row else "main").replace('"', '""') + '"'
        for gen in gens:
            p = gen.projection
            durable = (
                f"SELECT coalesce(max(last_seq), 0) FROM {db}.main.evlog_progress"
                f" WHERE name = '{p.name}' AND generation = {gen.generation}"
            )
            # The file's rows up to the position registered with the hot rows: the flusher may
            # have moved rows past it to the file since (see register_hot).
            # (No position registered: a generation a rebuild stopped following until its
            # swap; its file rows answer as they are.)
            upto = (
                f"SELECT coalesce(max(position), {2**63 - 1}) FROM {POSITIONS}"
                f" WHERE generation = '{gen.schema}'"
            )
            for table in p.tables:
                cur.execute(
                    f'CREATE OR REPLACE TEMP VIEW "{table.name}" AS'
                    f" SELECT * FROM {db}.{gen.cold(table.name)} WHERE seq <= ({upto}) UNION ALL"
                    f" {gen.hot_sql(table.name, durable)}"
                )
        for gen in gens:
            for view, sql in gen.projection.views.items():
                cur.execute(f'CREATE OR REPLACE TEMP VIEW "{view}" AS {sql}')
            for macro, sql in gen.projection.macros.items():
                cur.execute(f"CREATE OR REPLACE TEMP MACRO {macro} AS TABLE {sql}")


def insert_progress(
    con: duckdb.DuckDBPyConnection, rows: list[tuple[str, int, int, int, int]]
) -> None:
    """Progress rows (name, generation, last_seq, events, projected_ns), in one statement for
    all generations: each DuckDB statement has a fixed cost."""
    values = ", ".join(["(?, ?, ?, ?, ?)"] * len(rows))
    params = [value for row in rows for value in row]
    con.execute(f"INSERT INTO evlog_progress VALUES {values}", params)


def register_hot(
    cur: duckdb.DuckDBPyConnection, gens: list[Generation], lock: threading.Lock
) -> None:
    """Register every live generation's hot rows on a query cursor, as they are now, and the
    position each has applied to (all read under `lock`): the union views read the file up
    to that position and the hot rows past what the file holds, so a query sees every
    projection at the batch it was at when the query started, even when the flusher commits
    rows to the file between then and the query's read of it."""
    finish_pending(cur)  # the previous call's result
    with lock:
        tables = [(g.hot(n).strip('"'), g.hot_rows(n)) for g in gens for n in g.hot_names()]
        positions = pa.table(
            {
                "generation": pa.array([g.schema for g in gens], pa.string()),
                "position": pa.array([g.position for g in gens], pa.int64()),
            }
        )
    for name, rows in tables:
        cur.register(name, rows)
    cur.register(POSITIONS, positions)
