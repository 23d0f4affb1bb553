"""Writing analytics out of DuckDB for other tools: one query's rows to Parquet, CSV or JSON
lines (DuckDB's COPY), or a snapshot of every projection into a DuckDB file of its own that the
duckdb CLI, a notebook or a BI tool can open while a follower holds the live file.

Both write beside the target and rename into place: a reader never sees a half-written file."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb

from .projection import Projection
from .query import QueryError, check_read_only, first_line

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
    """Write the rows of `what` (a table/view name or a read-only SELECT) to `out` with
    DuckDB's COPY in `fmt` (from export_format); returns the rows written."""
    statements = check_read_only(con, select_of(what))
    if len(statements) != 1:
        raise QueryError("export takes one SELECT")
    options = {"parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER", "json": "FORMAT json"}
    if fmt == "csv" and out.suffix.lower() == ".tsv":
        options["csv"] += ", DELIMITER '\t'"
    tmp = out.with_name(f".{out.name}.evlog-tmp-{os.getpid()}")
    try:
        row = con.execute(
            f"COPY ({statements[0].query}) TO '{_quoted(tmp)}' ({options[fmt]})"
        ).fetchone()
        os.replace(tmp, out)
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return int(row[0]) if row else 0


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
        con.execute(f"ATTACH '{_quoted(tmp)}' AS {alias} (READ_WRITE)")
        try:
            for p in projections:
                for table in p.tables:
                    con.execute(
                        f'CREATE TABLE {alias}.main."{table.name}" AS SELECT * FROM "{table.name}"'
                    )
                    n = con.execute(f'SELECT count(*) FROM {alias}.main."{table.name}"').fetchone()
                    counts[table.name] = int(n[0]) if n else 0
            for p in projections:
                for view, sql in p.views.items():
                    con.execute(f'CREATE VIEW {alias}.main."{view}" AS {sql}')
                for macro, sql in p.macros.items():
                    con.execute(f"CREATE MACRO {alias}.main.{macro} AS TABLE {sql}")
            con.execute(
                f"CREATE TABLE {alias}.main.evlog_snapshot AS SELECT ? AS taken_at_ns,"
                " (SELECT coalesce(max(seq), 0) FROM events) AS position",
                [time.time_ns()],
            )
        finally:
            con.execute(f"DETACH {alias}")
        os.replace(tmp, out)
    except duckdb.Error as exc:
        raise QueryError(f"snapshot failed: {first_line(exc)}") from None
    finally:
        for leftover in (tmp, Path(f"{tmp}.wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return counts


def _quoted(path: Path) -> str:
    return str(path.resolve()).replace("'", "''")
