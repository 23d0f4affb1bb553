"""A generation of a projection: the schema its tables live in, how far it has read (its
positions, under a lock of its own), and its hot tier: per table, the batches projected since
the last flush, as chunks in memory (Arrow tables, or Python columns made Arrow once for many
batches: `PyRows`), under the hot tier's own lock. The store (store.py) moves chunks to the
file; query cursors (query.py) read them beside the cold tables; each through the methods here,
never the locks themselves."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .arrow import cast_like_duckdb, from_columns
from .projection import LiveColumns, Projection

HOT_PREFIX = "evlog_hot_"  # names under which hot Arrow tables are registered on a cursor
# The hot tier of a per-event projection holds the events themselves, under this name; its
# tables' rows are made from them when read or flushed (projector/perevent.py).
EVENTS = "evlog_events"


@dataclass(slots=True)
class Generation:
    """One generation of a projection's tables. `position` (last seq applied, hot or cold) and
    `durable` (last seq in the file) are read from any thread; they change only through
    `advance()`, under their own lock, which is never held across I/O: the DuckDB thread
    advances both after a commit, the flusher advances `durable` after moving hot rows."""

    projection: Projection
    generation: int
    version: int
    position: int  # last seq applied (hot or cold)
    durable: int = -1  # last seq in the file; -1: same as position
    _positions: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    # Hot rows, per table: (last seq in the chunk, its rows), oldest first. Chunks up to the
    # durable position stay until the next flush (a query may still need them: see flush).
    hot_chunks: dict[str, list[tuple[int, pa.Table | PyRows]]] = field(
        default_factory=dict, repr=False, compare=False
    )
    hot_schemas: dict[str, pa.Schema] = field(default_factory=dict, repr=False, compare=False)
    # Each table's columns as `CAST("c" AS <its SQL type>)`: the hot rows in the union views.
    hot_select: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.durable < 0:
            self.durable = self.position

    def advance(self, position: int | None = None, durable: int | None = None) -> None:
        """Move the positions forward (never back: a late writer cannot undo a newer one)."""
        with self._positions:
            if position is not None and position > self.position:
                self.position = position
            if durable is not None and durable > self.durable:
                self.durable = durable

    def positions(self) -> tuple[int, int]:
        """(position, durable), read together."""
        with self._positions:
            return self.position, self.durable

    def open_hot(self, table: str, schema: pa.Schema, select: str, *, rows: bool = True) -> None:
        """Start `table`'s (empty) hot tier: its Arrow schema and its columns cast to their SQL
        types (for the union views); `rows=False`: the table of a per-event projection, whose
        hot rows are made from its events (no chunks of its own)."""
        with self._positions:
            self.hot_schemas[table] = schema
            self.hot_select[table] = select
            if rows:
                self.hot_chunks[table] = []

    @property
    def per_event(self) -> bool:
        """Its hot tier holds events (EVENTS), not rows (see projector/perevent.py)."""
        return self.projection.per_event

    def hot_names(self) -> list[str]:
        """What its hot tier holds chunks of: its tables, or EVENTS."""
        with self._positions:
            return list(self.hot_chunks)

    def hot_sql(self, table: str, after: str) -> str:
        """A SELECT of `table`'s hot rows past seq `after` (SQL: a number or a subquery), in
        its columns' SQL types, over the hot tables registered on the cursor (register_hot)."""
        if not self.per_event:
            return f"SELECT {self.hot_select[table]} FROM {self.hot(table)} WHERE seq > ({after})"
        events = f"{self.hot(EVENTS)} WHERE seq > ({after})"
        rows = self.projection.rows_of_events(table, events)
        return f"SELECT {self.hot_select[table]} FROM ({rows})"

    def add_hot(self, tables: dict[str, pa.Table | LiveColumns | PyRows], last_seq: int) -> None:
        """Add a live batch's rows (per table) to the hot tier, then move the position to it."""
        with self._positions:
            for name, rows in tables.items():
                _add_hot(self, name, last_seq, rows)
        self.advance(last_seq)

    def drop_hot_through(self, done: int) -> None:
        """Forget hot chunks whose rows are all at or before seq `done` (in the file now)."""
        with self._positions:
            for name, chunks in self.hot_chunks.items():
                self.hot_chunks[name] = [(last, t) for last, t in chunks if last > done]

    @property
    def schema(self) -> str:
        return schema_name(self.projection.name, self.generation)

    def cold(self, table: str) -> str:
        return f'"{self.schema}"."{table}"'

    def hot(self, table: str) -> str:
        """The name a cursor knows this table's hot rows by (registered per query)."""
        return f'"{HOT_PREFIX}{self.schema}__{table}"'

    def hot_rows(self, table: str, after: int = -1) -> pa.Table:
        """The hot rows of `table` in chunks that reach past seq `after`, as one Arrow table
        (a chunk may also hold rows at or before `after`: callers filter by seq). Rows still
        held as Python lists are made Arrow here, once, outside the lock."""
        with self._positions:
            chunks = [t for last, t in self.hot_chunks.get(table, ()) if last > after]
            for t in chunks:
                if isinstance(t, PyRows):
                    t.seal()  # later batches start a chunk of their own
        schema = self.hot_schemas[table]
        if not chunks:
            return schema.empty_table()
        # Made Arrow once (PyRows keeps it); the chunk stays in the list as it is, as another
        # generation holding it may be adding a batch to it meanwhile (store.py).
        chunks = [t.to_arrow(schema) if isinstance(t, PyRows) else t for t in chunks]
        # One chunk: DuckDB scans an Arrow table of many small chunks several times slower
        # (docs/performance.md#hot-tier).
        return pa.concat_tables(chunks).combine_chunks()


PY_CHUNK_ROWS = 1024  # an open chunk of Python columns is made Arrow at this many rows


class PyRows:
    """Hot rows of one table not yet made Arrow: a column list per column, with the Arrow
    schema of those Python values. Live batches extend the open chunk (a list extend per
    column, where making Arrow costs a call per column per batch); the flusher or
    a query makes it Arrow once, for many batches (docs/performance.md#hot-tier). One chunk
    may be held by several generations (the events, shared by the `events` projection and the
    per-event ones: store.py), so it is made Arrow once for all of them."""

    __slots__ = ("_arrow", "_cast", "_lock", "columns", "schema", "sealed")

    def __init__(self, schema: pa.Schema, columns: Sequence[Sequence[Any]]) -> None:
        self.schema = schema
        self.columns: list[list[Any]] = [list(c) for c in columns]
        self.sealed = False
        self._arrow: pa.Table | None = None
        self._cast: tuple[pa.Schema, pa.Table] | None = None  # the last schema asked for
        self._lock = threading.Lock()  # orders extends against sealing (and making Arrow)

    def __len__(self) -> int:
        with self._lock:
            if self._arrow is not None:
                return int(self._arrow.num_rows)
            return len(self.columns[0]) if self.columns else 0

    def extend(self, columns: Sequence[Sequence[Any]]) -> bool:
        """Add rows, unless the chunk is sealed (then False: start another)."""
        with self._lock:
            if self.sealed:
                return False
            for mine, more in zip(self.columns, columns, strict=True):
                mine.extend(more)
            return True

    def seal(self) -> None:
        """No more rows: what is here is made Arrow as it is."""
        with self._lock:
            self.sealed = True

    def to_arrow(self, schema: pa.Schema) -> pa.Table:
        """The rows in the table's hot `schema`, cast as DuckDB's INSERT would (sealed first:
        the rows made Arrow are all it will hold)."""
        with self._lock:
            self.sealed = True
            if self._arrow is None:
                self._arrow = from_columns(self.columns, self.schema)
                self.columns = []  # the Arrow table holds the rows now
            if self._arrow.schema.equals(schema):
                return self._arrow
            if self._cast is None or self._cast[0] is not schema:
                renamed = self._arrow.rename_columns(schema.names)
                self._cast = (schema, cast_like_duckdb(renamed, schema))
            return self._cast[1]


def schema_name(name: str, generation: int) -> str:
    return f"evlog_{name}_g{generation}"


def _add_hot(
    gen: Generation, table: str, last_seq: int, rows: pa.Table | LiveColumns | PyRows
) -> None:
    """Add a batch's rows of one table to its hot chunks (the caller holds the positions
    lock): Arrow rows as a chunk of their own, a shared chunk (PyRows, already holding the
    batch) as the last chunk, Python columns into the open chunk, which is made Arrow here
    once it holds PY_CHUNK_ROWS rows."""
    chunks = gen.hot_chunks[table]
    if isinstance(rows, PyRows):
        if chunks and chunks[-1][1] is rows:
            chunks[-1] = (last_seq, rows)
        else:
            chunks.append((last_seq, rows))
        return
    if isinstance(rows, pa.Table):
        if rows.num_rows:
            chunks.append((last_seq, rows))
        return
    schema, columns = rows
    if not columns or not len(columns[0]):
        return
    open_ = chunks[-1][1] if chunks else None
    if not (isinstance(open_, PyRows) and open_.schema is schema and open_.extend(columns)):
        open_ = PyRows(schema, columns)
        chunks.append((last_seq, open_))
    if len(open_) >= PY_CHUNK_ROWS:
        # Made Arrow a piece at a time on this thread: a second's rows made Arrow at once at
        # high rates would hold the GIL, and the event loop with it, for tens of ms.
        chunks[-1] = (last_seq, open_.to_arrow(gen.hot_schemas[table]))
    else:
        chunks[-1] = (last_seq, open_)
