"""What a projection is: named tables with a schema and version, fed micro-batches of events.

A projection writes rows only by appending (no UPDATE, no index): DuckDB lets such commits go on
while a checkpoint runs, which keeps the live path free of checkpoint stalls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

from .arrow import from_columns
from .batch import EventBatch

# A table's rows of one batch as Python values, a sequence per column, with their Arrow schema.
LiveColumns = tuple[pa.Schema, Sequence[Sequence[Any]]]


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: str  # the column list of CREATE TABLE, e.g. "seq BIGINT, stream VARCHAR"

    @property
    def column_names(self) -> list[str]:
        """The table's column names, in declaration order."""
        return [c.strip().split()[0].strip('"') for c in split_columns(self.columns)]

    @property
    def column_types(self) -> list[str]:
        """The declared SQL type of each column, e.g. "VARCHAR[]"."""
        return [c.split()[1] for c in split_columns(self.columns)]


@dataclass(slots=True)
class Projection:
    """Subclass and set the class attributes; override `rows` (Arrow form), or `live_columns`
    (row form: `rows` then makes them Arrow), or `apply` for custom SQL."""

    name: ClassVar[str]
    version: ClassVar[int]
    tables: ClassVar[tuple[Table, ...]]
    # Analytics views over the public table names; created once in the main schema.
    views: ClassVar[dict[str, str]] = {}
    # Table macros, "name(params)" -> SELECT, created beside the views.
    macros: ClassVar[dict[str, str]] = {}
    # Event types this projection reads; None means every event.
    event_types: ClassVar[frozenset[str] | None] = None
    description: ClassVar[str] = ""
    # A per-event transform (projector/perevent.py): the live tier keeps its events, and its
    # rows are made when read and when flushed, by `rows_of_events` and `apply_events`.
    per_event: ClassVar[bool] = False
    # Upgrades in place: version -> the statements that bring the tables of the version before
    # it to this one without a rebuild, for changes the events already projected need not be
    # read again for (a column they have no value for, say); `{table}` names a table of this
    # projection. A version bump without a path of upgrades is rebuilt from the log.
    upgrades: ClassVar[dict[int, tuple[str, ...]]] = {}
    options: dict[str, Any] = field(default_factory=dict)

    def upgrade_steps(self, from_version: int) -> list[str] | None:
        """The statements that bring `from_version`'s tables to this version, or None if some
        step has none (then it must be rebuilt)."""
        if from_version >= self.version:
            return None
        steps: list[str] = []
        for version in range(from_version + 1, self.version + 1):
            if version not in self.upgrades:
                return None
            steps += self.upgrades[version]
        return steps

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        """New rows per table for this batch (only events of `event_types`). By default the
        rows `live_columns` gives, made Arrow (a projection in row form writes only that)."""
        columns = self.live_columns(batch)
        if columns is None:
            raise NotImplementedError
        return {table: from_columns(c, schema) for table, (schema, c) in columns.items()}

    def live_rows(self, con: duckdb.DuckDBPyConnection, batch: EventBatch) -> dict[str, pa.Table]:
        """This batch's rows per table for the live (in-memory) tier, as Arrow. By default
        `rows()`; a projection that writes with SQL in `apply` gives the same rows here (it may
        run a SELECT on `con`, never write)."""
        mine = batch.of_types(self.event_types)
        return self.rows(mine) if len(mine) else {}

    def live_columns(self, batch: EventBatch) -> dict[str, LiveColumns] | None:
        """This batch's rows per table as Python columns with their Arrow schema (one schema
        object per table, the same every batch), for the live tier to make Arrow many batches
        at a time; None: use `live_rows`. The built-in projections give them; the rows must
        equal those `rows()`/`apply` write."""
        return None

    def rows_of_events(self, table: str, events: str) -> str:
        """For a per-event projection: a SELECT of `table`'s rows, in its column order, from
        the events relation `events` (SQL: a table name, or one with a WHERE)."""
        raise NotImplementedError

    def apply_events(
        self, con: duckdb.DuckDBPyConnection, target: Callable[[str], str], events: pa.Table
    ) -> None:
        """For a per-event projection: write the rows of `events` (Arrow, the batch's columns)
        inside the caller's transaction, as `apply` would."""
        raise NotImplementedError

    def apply(
        self, con: duckdb.DuckDBPyConnection, target: Callable[[str], str], batch: EventBatch
    ) -> int:
        """Write the batch inside the caller's transaction; `target(table)` is the qualified
        name to insert into (the hot or the cold copy of the table)."""
        mine = batch.of_types(self.event_types)
        if not len(mine):
            return 0
        written = 0
        for table, rows in self.rows(mine).items():
            if rows.num_rows:
                con.from_arrow(rows).insert_into(target(table))
                written += rows.num_rows
        return written


def split_columns(columns: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in columns:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current))
    return parts
