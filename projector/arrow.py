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
