"""`events`: a columnar mirror of every event, payload as DuckDB JSON, for ad-hoc SQL."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from evlog.eventlog.columns import EVENT_ROW

from ..batch import EventBatch
from ..projection import Projection, Table


class EventsProjection(Projection):
    name = "events"
    version = 1
    description = "every event, payload as JSON"
    tables = (
        Table(
            "events",
            "seq BIGINT, stream VARCHAR, version BIGINT, type VARCHAR, schema_version INTEGER,"
            " key VARCHAR, payload JSON, metadata JSON, source_time TIMESTAMP,"
            " read_ns BIGINT, committed_ns BIGINT",
        ),
    )
    views: ClassVar[dict[str, str]] = {
        "events_per_stream": """
            SELECT stream, count(*) AS events, min(seq) AS first_seq, max(seq) AS last_seq,
                   max(version) AS version, max(source_time) AS last_source_time
            FROM events GROUP BY stream""",
        "events_per_type": """
            SELECT type, count(*) AS events, min(seq) AS first_seq, max(seq) AS last_seq
            FROM events GROUP BY type""",
    }
    # Arrow types of the log's columns, in read order (eventlog/columns.py).
    _TYPES = tuple(pa.type_for_alias(c.arrow) for c in EVENT_ROW)

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        arrays = [pa.array(col, t) for col, t in zip(batch.columns, self._TYPES, strict=True)]
        return {"events": pa.Table.from_arrays(arrays, names=self.tables[0].column_names)}
