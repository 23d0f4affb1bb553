"""Read-only SQL over the analytics, by construction: a user's statements (`evlog query`, the
query socket, export's SELECT) run inside a read-only transaction (DuckDB refuses any write
there, whatever form it takes: EXPLAIN ANALYZE of a DELETE included) on a database that has no
file system or network access and loads no extension (`SAFE_CONFIG`: every DuckDB evlog opens
has it, bar the one that writes export files and snapshots, which runs no user SQL). Before
that, only SELECT and EXPLAIN of a SELECT are let through, so that a SET or a CALL is refused
with one line instead of failing in the middle. Results come back typed, as an Arrow table
with DuckDB's own type names beside it."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from .errors import QueryError, first_line, message_of

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
# Every DuckDB connection evlog opens for the analytics: no file or network access (no
# read_csv('/etc/passwd'), no COPY TO, no ATTACH) and no extension installed or loaded behind
# the user's back (read_json_auto('https://...') would fetch httpfs).
SAFE_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
# Connections that run no user SQL (they write export files and snapshots): file access, still
# no extension fetched from the network.
NO_EXTENSIONS: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
_EXPLAIN = re.compile(r"^\s*EXPLAIN\b(?:\s+ANALY[SZ]E\b)?(?:\s*\([^)]*\))?", re.I)
# Schema metadata key under which a result carries DuckDB's type of each column (e.g. "JSON",
# which Arrow sees as a plain string): a result read back from IPC still knows it.
TYPES_KEY = b"evlog.duckdb_types"
FETCH_BATCH = 8_192


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
            return list(orjson.loads(meta[TYPES_KEY]))
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


def strip_leading_comments(sql: str) -> str:
    """The statement without the comments before it (DuckDB keeps them in its text)."""
    while True:
        sql = sql.lstrip()
        if sql.startswith("--"):
            sql = sql.split("\n", 1)[1] if "\n" in sql else ""
        elif sql.startswith("/*") and "*/" in sql:
            sql = sql.split("*/", 1)[1]
        else:
            return sql


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> list[Any]:
    """The statements of `sql`, if every one is a SELECT, or an EXPLAIN (ANALYZE) of a
    SELECT; else QueryError. (The read-only transaction they then run in is what makes them
    read-only; this says no early, in one line, to what would fail there or change a
    setting.)"""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(message_of(exc)) from None
    if not statements:
        raise QueryError("empty query")
    for st in statements:
        if st.type == duckdb.StatementType.EXPLAIN:
            inner = _EXPLAIN.sub("", strip_leading_comments(st.query), count=1)
            try:
                explained = con.extract_statements(inner)
            except duckdb.Error:
                explained = []
            kinds = [e.type for e in explained]
            if kinds != [duckdb.StatementType.SELECT]:
                what = kinds[0].name if len(kinds) == 1 else "that"
                raise QueryError(f"queries are read-only: EXPLAIN of {what} is not allowed")
        elif st.type not in ALLOWED:
            raise QueryError(f"queries are read-only: {st.type.name} is not allowed")
    return list(statements)


@contextlib.contextmanager
def read_only(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """A read-only transaction on `con` for the block: DuckDB refuses every write in it."""
    try:
        con.execute("BEGIN TRANSACTION READ ONLY")
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from None
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")


def run_query(
    con: duckdb.DuckDBPyConnection, sql: str, *, max_rows: int | None = None
) -> QueryResult:
    """Run read-only `sql` (several statements: the last one's rows), in a read-only
    transaction; at most `max_rows` rows when given (`truncated` says whether there were
    more)."""
    statements = check_read_only(con, sql)
    with read_only(con):
        return _rows(con, statements, max_rows)


def _rows(
    con: duckdb.DuckDBPyConnection, statements: list[Any], max_rows: int | None
) -> QueryResult:
    try:
        for st in statements[:-1]:
            con.execute(st.query).fetchall()
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
        raise QueryError(message_of(exc)) from None
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return QueryResult(table.replace_schema_metadata({TYPES_KEY: orjson.dumps(types)}), truncated)
