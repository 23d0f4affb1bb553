"""Read-only SQL over the analytics: only SELECT and EXPLAIN statements are run, and results
come back typed, as an Arrow table with DuckDB's own type names beside it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from .errors import QueryError

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
# Schema metadata key under which a result carries DuckDB's type of each column (e.g. "JSON",
# which Arrow sees as a plain string): a result read back from IPC still knows it.
TYPES_KEY = b"evlog.duckdb_types"
FETCH_BATCH = 8_192


def first_line(exc: BaseException) -> str:
    """DuckDB's message without its multi-line context (the caret drawing, hints)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@dataclass(slots=True)
class QueryResult:
    """A query's rows as an Arrow table; `truncated` when a `max_rows` cut it short."""

    table: pa.Table
    truncated: bool = False

    @property
    def columns(self) -> list[str]:
        """The column names, in order."""
        return list(self.table.column_names)

    @property
    def types(self) -> list[str]:
        """DuckDB's type of each column ("JSON", "TIMESTAMP", "VARCHAR[]", ...)."""
        meta = self.table.schema.metadata or {}
        if TYPES_KEY in meta:
            return list(json.loads(meta[TYPES_KEY]))
        return [str(t) for t in self.table.schema.types]

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        """The rows as Python tuples (datetimes, lists, dicts, Decimals as Arrow gives them)."""
        names = self.columns
        return [tuple(r[c] for c in names) for r in self.table.to_pylist()]

    def to_ipc(self) -> bytes:
        """The table as an Arrow IPC stream (how the query socket sends it)."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.table.schema) as writer:
            writer.write_table(self.table)
        return bytes(sink.getvalue())

    @classmethod
    def from_ipc(cls, data: bytes, truncated: bool = False) -> QueryResult:
        """The inverse of `to_ipc`."""
        return cls(pa.ipc.open_stream(pa.py_buffer(data)).read_all(), truncated)


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> list[Any]:
    """The statements of `sql`, if every one is a SELECT or EXPLAIN; else QueryError."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from None
    if not statements:
        raise QueryError("empty query")
    for st in statements:
        if st.type not in ALLOWED:
            raise QueryError(f"queries are read-only: {st.type.name} is not allowed")
    return list(statements)


def run_query(
    con: duckdb.DuckDBPyConnection, sql: str, *, max_rows: int | None = None
) -> QueryResult:
    """Run read-only `sql` (several statements: the last one's rows); at most `max_rows` rows
    when given (`truncated` says whether there were more)."""
    statements = check_read_only(con, sql)
    try:
        for st in statements[:-1]:
            con.execute(st.query)
        rel = con.sql(statements[-1].query)
        types = [str(t) for t in rel.types]
        reader = rel.to_arrow_reader(FETCH_BATCH)
        batches: list[pa.RecordBatch] = []
        kept = 0
        truncated = False
        for rb in reader:
            if max_rows is not None and kept + rb.num_rows > max_rows:
                batches.append(rb.slice(0, max_rows - kept))
                truncated = True
                break
            batches.append(rb)
            kept += rb.num_rows
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from None
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return QueryResult(table.replace_schema_metadata({TYPES_KEY: json.dumps(types)}), truncated)
