"""Small helpers to build Arrow columns from Python lists for projection rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

INT64 = pa.int64()
STRING = pa.string()
TIMESTAMP_NS = pa.timestamp("ns")


def ints(values: Sequence[Any]) -> pa.Array:
    return pa.array(values, INT64)


def strings(values: Sequence[Any]) -> pa.Array:
    return pa.array(values, STRING)


def times_ns(values: Sequence[Any]) -> pa.Array:
    return pa.array(values, TIMESTAMP_NS)


def from_columns(columns: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    """Python values, a sequence per column, as an Arrow table of `schema` (one `pa.array` a
    column: its cost is per call, so callers hand many rows at once)."""
    arrays = [pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def finish_pending(con: Any) -> None:
    """DuckDB (2.x) refuses a new relation (`con.sql`) while an earlier execute()'s result is
    unfinished (e.g. after a fetchone()): run that result to its end (older DuckDB has no
    complete() and no such rule). Callers that register an Arrow table and name it in SQL call
    this, then `con.sql` themselves."""
    complete = getattr(con, "complete", None)
    if complete is not None:
        complete()


def query_arrow(con: Any, sql: str) -> pa.Table:
    """A read query's rows as an Arrow table (see finish_pending)."""
    finish_pending(con)
    table: pa.Table = con.sql(sql).to_arrow_table()
    return table


_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def cast_like_duckdb(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` cast to `schema` column by column, as a DuckDB INSERT casts: a timestamp made
    coarser is rounded half away from zero (Arrow's own cast truncates, or refuses to lose
    precision), so rows cast here equal rows DuckDB inserted itself. Anything else is Arrow's
    safe cast (an ArrowInvalid when a value does not fit)."""
    columns = []
    for name, field in zip(schema.names, schema, strict=True):
        col = table[name]
        have, want = col.type, field.type
        if (
            pa.types.is_timestamp(have)
            and pa.types.is_timestamp(want)
            and _UNIT_NS[have.unit] < _UNIT_NS[want.unit]
        ):
            step = _UNIT_NS[want.unit] // _UNIT_NS[have.unit]
            raw = pc.cast(col, pa.int64())
            half = pc.multiply(pc.sign(raw), step // 2)
            col = pc.cast(pc.divide(pc.add(raw, half), step), want)
        elif have != want:
            col = pc.cast(col, want)
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=schema)
