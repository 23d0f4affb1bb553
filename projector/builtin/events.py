"""`events`: a columnar mirror of every event, payload as DuckDB JSON, for ad-hoc SQL."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from ..batch import EVENT_SCHEMA, EventBatch
from ..projection import LiveColumns, Projection, Table


class EventsProjection(Projection):
    name = "events"
    version = 2
    description = "every event, payload as JSON"
    tables = (
        Table(
            "events",
            "seq BIGINT, stream VARCHAR, version BIGINT, type VARCHAR, schema_version INTEGER,"
            " key VARCHAR, payload JSON, metadata JSON, source_time TIMESTAMP,"
            " read_ns BIGINT, committed_ns BIGINT, written_ns BIGINT",
        ),
    )
    # 2: the log's written_ns (events before it have none).
    upgrades: ClassVar[dict[int, tuple[str, ...]]] = {
        2: ("ALTER TABLE {events} ADD COLUMN written_ns BIGINT",),
    }
    views: ClassVar[dict[str, str]] = {
        "events_per_stream": """
            SELECT stream, count(*) AS events, min(seq) AS first_seq, max(seq) AS last_seq,
                   max(version) AS version, max(source_time) AS last_source_time
            FROM events GROUP BY stream""",
        "events_per_type": """
            SELECT type, count(*) AS events, min(seq) AS first_seq, max(seq) AS last_seq
            FROM events GROUP BY type""",
    }

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        return {"events": batch.arrow}

    def live_columns(self, batch: EventBatch) -> dict[str, LiveColumns]:
        return {"events": (EVENT_SCHEMA, batch.columns)}
