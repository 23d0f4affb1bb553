"""`latency`: per event, its written (where the source tells), read, commit and visible stamps
and how it was projected, so latency is plain SQL. The stages and their definitions:
docs/latency.md."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from ..batch import COMMITTED, READ, SEQ, STREAM, TYPE, WRITTEN, EventBatch
from ..projection import LiveColumns, Projection, Table

LATENCY_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("stream", pa.string()),
        ("type", pa.string()),
        ("read_ns", pa.int64()),
        ("committed_ns", pa.int64()),
        ("projected_ns", pa.int64()),
        ("mode", pa.string()),
        ("written_ns", pa.int64()),
    ]
)


class LatencyProjection(Projection):
    name = "latency"
    version = 3
    description = "written/read/commit/visible stamps per event, and whether it was live"
    tables = (
        Table(
            "latency",
            "seq BIGINT, stream VARCHAR, type VARCHAR, read_ns BIGINT, committed_ns BIGINT,"
            " projected_ns BIGINT, mode VARCHAR, written_ns BIGINT",
        ),
    )
    # 3: written_ns, in place: a rebuild would stamp every earlier event visible again.
    upgrades: ClassVar[dict[int, tuple[str, ...]]] = {
        3: ("ALTER TABLE {latency} ADD COLUMN written_ns BIGINT",),
    }
    views: ClassVar[dict[str, str]] = {
        # Stage durations in microseconds (docs/latency.md); `mode` says whether the event was
        # projected live, by a catch-up run or by a rebuild.
        "latency_stages": """
            SELECT seq, stream, type, mode,
                   make_timestamp(committed_ns // 1000) AS committed_at,
                   (committed_ns - read_ns) / 1e3 AS read_to_commit_us,
                   (projected_ns - committed_ns) / 1e3 AS commit_to_visible_us,
                   (projected_ns - read_ns) / 1e3 AS read_to_visible_us,
                   (read_ns - written_ns) / 1e3 AS written_to_read_us,
                   (projected_ns - written_ns) / 1e3 AS written_to_visible_us
            FROM latency""",
    }

    def live_columns(self, batch: EventBatch) -> dict[str, LiveColumns]:
        c = batch.columns
        n = len(batch)
        stamps = [batch.projected_ns] * n, [batch.mode] * n
        columns = [c[SEQ], c[STREAM], c[TYPE], c[READ], c[COMMITTED], *stamps, c[WRITTEN]]
        return {"latency": (LATENCY_SCHEMA, columns)}
