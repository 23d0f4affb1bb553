"""`events`: a columnar mirror of every event, payload as DuckDB JSON, for ad-hoc SQL."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from ..arrow import INT64, ints, strings, times_ns
from ..batch import (
    COMMITTED,
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
    EventBatch,
)
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

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        r = batch.rows
        return {
            "events": pa.table(
                {
                    "seq": ints([x[SEQ] for x in r]),
                    "stream": strings([x[STREAM] for x in r]),
                    "version": ints([x[VERSION] for x in r]),
                    "type": strings([x[TYPE] for x in r]),
                    "schema_version": pa.array([x[SCHEMA_VERSION] for x in r], pa.int32()),
                    "key": strings([x[KEY] for x in r]),
                    "payload": strings([x[PAYLOAD] for x in r]),
                    "metadata": strings([x[METADATA] for x in r]),
                    "source_time": times_ns([x[SOURCE_TIME] for x in r]),
                    "read_ns": pa.array([x[READ] for x in r], INT64),
                    "committed_ns": pa.array([x[COMMITTED] for x in r], INT64),
                }
            )
        }
