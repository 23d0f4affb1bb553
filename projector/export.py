"""Writing analytics out of DuckDB for other tools: one query's rows to Parquet, CSV or JSON
lines (DuckDB's COPY), or a snapshot of every projection into a DuckDB file of its own that the
duckdb CLI, a notebook or a BI tool can open while a follower holds the live file.

Both write beside the target and rename into place: a reader never sees a half-written file."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb

from .projection import Projection
from .query import (
    FETCH_BATCH,
    NO_EXTENSIONS,
    QueryError,
    check_read_only,
    first_line,
    read_only,
)

EXPORT_FORMATS = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def export_format(path: Path, fmt: str | None = None) -> str:
    """The COPY format for `path` (from its extension unless `fmt` says): parquet, csv or json."""
    if fmt is not None:
        if fmt not in ("parquet", "csv", "json", "jsonl"):
            raise QueryError(f"unknown export format {fmt!r}: parquet, csv or jsonl")
        return "json" if fmt == "jsonl" else fmt
    found = EXPORT_FORMATS.get(path.suffix.lower())
    if found is None:
        raise QueryError(
            f"{path}: cannot tell the format from the name; end it in .parquet, .csv or .jsonl"
            " (or give --format)"
        )
    return found


def select_of(what: str) -> str:
    """A table or view name as `SELECT * FROM name`; anything else is taken as a query."""
    return f'SELECT * FROM "{what}"' if _IDENTIFIER.fullmatch(what.strip()) else what


def export(con: duckdb.DuckDBPyConnection, what: str, out: Path, fmt: str) -> int:
    """Write the rows of `what` (a table/view name or a read-only SELECT) to `out` in `fmt`
    (from export_format); returns the rows written. The SELECT runs as any user query does
    (read-only, no file access: projector/query.py); its rows are written by a DuckDB of
    evlog's own that holds nothing but them."""
    statements = check_read_only(con, select_of(what))
    if len(statements) != 1:
        raise QueryError("export takes one SELECT")
    options = {"parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER", "json": "FORMAT json"}
    if fmt == "csv" and out.suffix.lower() == ".tsv":
        options["csv"] += ", DELIMITER '\t'"
    tmp = out.with_name(f".{out.name}.evlog-tmp-{os.getpid()}")
    try:
        with read_only(con), _writer() as w:
            rel = con.sql(statements[0].query)
            _register_rows(w, rel)
            rows = w.execute(
                f"COPY (SELECT * FROM evlog_rows) TO '{_quoted(tmp)}' ({options[fmt]})"
            ).fetchall()
        os.replace(tmp, out)
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return int(rows[0][0]) if rows else 0


def snapshot(
    con: duckdb.DuckDBPyConnection, projections: Sequence[Projection], out: Path
) -> dict[str, int]:
    """Copy every projection's tables (as `con` sees them: with a follower's cursor, live rows
    included) into a new DuckDB file `out`, and define its views and macros there, so the file
    answers the same queries. Replaces `out` if it exists. Returns rows per table."""
    tmp = out.with_name(f".{out.name}.evlog-tmp-{os.getpid()}")
    for leftover in (tmp, Path(f"{tmp}.wal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    alias = "evlog_snapshot"
    counts: dict[str, int] = {}
    try:
        with read_only(con), _writer() as w:
            w.execute(f"ATTACH '{_quoted(tmp)}' AS {alias} (READ_WRITE)")
            w.execute(f"USE {alias}")  # the views and macros name tables without a schema
            try:
                for p in projections:
                    for table in p.tables:
                        target = f'{alias}.main."{table.name}"'
                        w.execute(f"CREATE TABLE {target} ({table.columns})")
                        _register_rows(w, con.sql(f'SELECT * FROM "{table.name}"'))
                        w.execute(f"INSERT INTO {target} SELECT * FROM evlog_rows")
                        n = w.execute(f"SELECT count(*) FROM {target}").fetchall()
                        counts[table.name] = int(n[0][0]) if n else 0
                for p in projections:
                    for view, sql in p.views.items():
                        w.execute(f'CREATE VIEW {alias}.main."{view}" AS {sql}')
                    for macro, sql in p.macros.items():
                        w.execute(f"CREATE MACRO {alias}.main.{macro} AS TABLE {sql}")
                head = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchall()
                w.execute(
                    f"CREATE TABLE {alias}.main.evlog_snapshot AS SELECT ? AS taken_at_ns,"
                    " ? AS position",
                    [time.time_ns(), int(head[0][0]) if head else 0],
                )
            finally:
                w.execute("USE memory")
                w.execute(f"DETACH {alias}")
        os.replace(tmp, out)
    except duckdb.Error as exc:
        raise QueryError(f"snapshot failed: {first_line(exc)}") from None
    finally:
        for leftover in (tmp, Path(f"{tmp}.wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return counts


@contextlib.contextmanager
def _writer() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB that writes files (COPY TO, ATTACH) and runs no user SQL: it sees
    only the rows handed to it."""
    w = duckdb.connect(":memory:", config=NO_EXTENSIONS)
    try:
        yield w
    finally:
        w.close()


def _register_rows(w: duckdb.DuckDBPyConnection, rel: duckdb.DuckDBPyRelation) -> None:
    """`rel`'s rows as the view `evlog_rows` of the writer, streamed as Arrow; JSON columns
    (plain strings in Arrow) made JSON again, so JSON lines nest them as DuckDB would."""
    types = [str(t) for t in rel.types]
    w.register("evlog_rows_arrow", rel.to_arrow_reader(FETCH_BATCH))
    picks = [
        f'CAST("{c}" AS JSON) AS "{c}"' if t == "JSON" else f'"{c}"'
        for c, t in zip(rel.columns, types, strict=True)
    ]
    w.execute(f"CREATE OR REPLACE TEMP VIEW evlog_rows AS SELECT {', '.join(picks)}"
              " FROM evlog_rows_arrow")  # fmt: skip


def _quoted(path: Path) -> str:
    return str(path.resolve()).replace("'", "''")
