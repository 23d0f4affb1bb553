"""A batch of log rows in columnar form, as projections consume it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson

# Column order of EventLog.read_rows / EVENT_COLUMNS.
SEQ, STREAM, VERSION, TYPE, SCHEMA_VERSION, KEY, PAYLOAD, METADATA, SOURCE_TIME, READ, COMMITTED = (
    range(11)
)


@dataclass(slots=True)
class EventBatch:
    """Consecutive events from the log; `projected_ns` is stamped once per batch, just before
    the DuckDB transaction that makes the batch visible."""

    rows: Sequence[tuple[Any, ...]]
    projected_ns: int = 0

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def first_seq(self) -> int:
        return int(self.rows[0][SEQ])

    @property
    def last_seq(self) -> int:
        return int(self.rows[-1][SEQ])

    def column(self, index: int) -> list[Any]:
        return [r[index] for r in self.rows]

    def of_types(self, types: frozenset[str] | None) -> EventBatch:
        if types is None:
            return self
        return EventBatch([r for r in self.rows if r[TYPE] in types], self.projected_ns)


class LazyPayloads:
    """Decoded payloads of a batch, decoded once however many projections ask."""

    def __init__(self, batch: EventBatch) -> None:
        self._batch = batch

    @cached_property
    def values(self) -> list[Any]:
        return [orjson.loads(r[PAYLOAD]) for r in self._batch.rows]
