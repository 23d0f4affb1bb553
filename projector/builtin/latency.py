"""`latency`: per event, the read -> committed -> projected stamps, so latency is plain SQL."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from ..arrow import ints, strings
from ..batch import COMMITTED, READ, SEQ, STREAM, TYPE, EventBatch
from ..projection import Projection, Table


class LatencyProjection(Projection):
    name = "latency"
    version = 1
    description = "read/commit/projected stamps per event"
    tables = (
        Table(
            "latency",
            "seq BIGINT, stream VARCHAR, type VARCHAR, read_ns BIGINT, committed_ns BIGINT,"
            " projected_ns BIGINT",
        ),
    )
    views: ClassVar[dict[str, str]] = {
        # Stage durations in microseconds; projected_ns is taken when the batch's DuckDB
        # transaction starts, so the commit itself is not in commit_to_projected_us.
        "latency_stages": """
            SELECT seq, stream, type,
                   make_timestamp(committed_ns // 1000) AS committed_at,
                   (committed_ns - read_ns) / 1e3 AS read_to_commit_us,
                   (projected_ns - committed_ns) / 1e3 AS commit_to_projected_us,
                   (projected_ns - read_ns) / 1e3 AS read_to_projected_us
            FROM latency""",
    }

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        c = batch.columns
        return {
            "latency": pa.table(
                {
                    "seq": ints(c[SEQ]),
                    "stream": strings(c[STREAM]),
                    "type": strings(c[TYPE]),
                    "read_ns": ints(c[READ]),
                    "committed_ns": ints(c[COMMITTED]),
                    "projected_ns": ints([batch.projected_ns] * len(batch)),
                }
            )
        }
