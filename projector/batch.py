"""A batch of log rows in columnar form, as projections consume it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pyarrow as pa

from evlog.eventlog.columns import (  # noqa: F401 - the row's indexes, re-exported
    COMMITTED,
    EVENT_ROW,
    KEY,
    METADATA,
    PAYLOAD,
    READ,
    SCHEMA_VERSION,
    SEQ,
    SOURCE_TIME,
    STREAM,
    TYPE,
    VERSION,
    WRITTEN,
)

# The events table's columns (the log's row, in read order: eventlog/columns.py).
ARROW_TYPES = tuple(pa.type_for_alias(c.arrow) for c in EVENT_ROW)
EVENT_COLUMN_NAMES = ["source_time" if c.name == "source_time_ns" else c.name for c in EVENT_ROW]
EVENT_SCHEMA = pa.schema(list(zip(EVENT_COLUMN_NAMES, ARROW_TYPES, strict=True)))


@dataclass
class EventBatch:
    """Consecutive events from the log; `projected_ns` is stamped once per batch, just before
    the DuckDB transaction that makes the batch visible, and `visible_ns` just after it."""

    rows: Sequence[tuple[Any, ...]]
    projected_ns: int = 0
    visible_ns: int = 0  # wall clock right after the DuckDB commit returned
    # How the batch was projected: "live" (following the log), "catch-up" (a bulk run over
    # what had accumulated) or "rebuild" (replayed); latency means something only for "live".
    mode: str = "live"

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def first_seq(self) -> int:
        """The sequence of the batch's first event."""
        return int(self.rows[0][SEQ])

    @property
    def last_seq(self) -> int:
        """The sequence of the batch's last event."""
        return int(self.rows[-1][SEQ])

    @cached_property
    def columns(self) -> list[tuple[Any, ...]]:
        """The batch transposed once (in C, by zip), shared by every projection."""
        if not self.rows:
            return [() for _ in EVENT_ROW]
        return list(zip(*self.rows, strict=True))

    @cached_property
    def arrow(self) -> pa.Table:
        """The batch as an Arrow table with the `events` table's columns (built once per batch,
        shared by the events projection and SQL projections)."""
        arrays = [pa.array(col, t) for col, t in zip(self.columns, ARROW_TYPES, strict=True)]
        return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)

    def column(self, index: int) -> tuple[Any, ...]:
        """One column of the batch (an index from eventlog/columns.py, e.g. PAYLOAD)."""
        return self.columns[index]

    def of_types(self, types: frozenset[str] | None) -> EventBatch:
        """The events of these types only (itself when all are; None: every type)."""
        if types is None or all(t in types for t in self.column(TYPE)):
            return self
        return EventBatch(
            [r for r in self.rows if r[TYPE] in types],
            self.projected_ns,
            self.visible_ns,
            self.mode,
        )
