"""Small helpers to build Arrow columns from Python lists for projection rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

INT64 = pa.int64()
STRING = pa.string()
TIMESTAMP_NS = pa.timestamp("ns")


def ints(values: Sequence[Any]) -> pa.Array:
    return pa.array(values, INT64)


def strings(values: Sequence[Any]) -> pa.Array:
    return pa.array(values, STRING)


def times_ns(values: Sequence[Any]) -> pa.Array:
    return pa.array(values, TIMESTAMP_NS)


def finish_pending(con: Any) -> None:
    """DuckDB (2.x) refuses a new relation (`con.sql`) while an earlier execute()'s result is
    unfinished (e.g. after a fetchone()): run that result to its end (older DuckDB has no
    complete() and no such rule). Callers whose SQL names a Python local (DuckDB's replacement
    scan looks in the calling frame) call this, then `con.sql` themselves."""
    complete = getattr(con, "complete", None)
    if complete is not None:
        complete()


def query_arrow(con: Any, sql: str) -> pa.Table:
    """A read query's rows as an Arrow table (see finish_pending)."""
    finish_pending(con)
    table: pa.Table = con.sql(sql).to_arrow_table()
    return table
