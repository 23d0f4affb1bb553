"""`evlog query`: read-only SQL over the analytics, in every output format."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .. import output
from ..runtime import UsageError
from .common import (
    AS_CSV,
    AS_JSON,
    AS_NL,
    AS_TSV,
    FORMAT,
    app,
    examples,
    output_format,
    settings,
)


@app.command()
@examples(
    'evlog query "SELECT author, count(*) AS n FROM messages GROUP BY 1 ORDER BY n DESC"',
    'evlog query --nl "SELECT seq, payload FROM events" | jq .payload',
)
def query(
    ctx: typer.Context,
    sql: Annotated[
        str | None,
        typer.Argument(help="A read-only SQL query over the analytics; '-': read it from stdin."),
    ] = None,
    sql_file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read the SQL from this file.")
    ] = None,
    fmt: Annotated[str | None, FORMAT] = None,
    as_json: Annotated[bool, AS_JSON] = False,
    as_nl: Annotated[bool, AS_NL] = False,
    as_csv: Annotated[bool, AS_CSV] = False,
    as_tsv: Annotated[bool, AS_TSV] = False,
    max_rows: Annotated[
        int | None,
        typer.Option(
            help=f"Print at most this many rows (default: all, or {output.TABLE_ROWS:,} in"
            " the table view, which says when it stopped).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run read-only SQL over the analytics (a running follower answers it).

    The same query prints the same bytes with or without a follower. Times are ISO 8601 (UTC
    for evlog's own columns), lists and structs are JSON, and JSON columns (payload, metadata)
    are nested objects in --json and --nl. Several statements run in turn; the last one's rows
    are printed."""
    from evlog import analytics, rendering

    s = settings(ctx)
    fmt = output_format(fmt, json=as_json, nl=as_nl, csv=as_csv, tsv=as_tsv)
    sql = _sql_text(sql, sql_file)
    if max_rows is not None and max_rows < 0:
        raise UsageError("--max-rows must be 0 or more")
    cap = max_rows if max_rows is not None else (output.TABLE_ROWS if fmt == "table" else None)
    result = analytics.query(s.duckdb, sql, max_rows=cap)
    rendering.write(result, fmt)
    if result.truncated:
        output.say(
            f"(only the first {cap:,} rows; --max-rows N for more, or --csv/--nl for every row)"
        )


def _sql_text(sql: str | None, sql_file: Path | None) -> str:
    """The SQL given as the argument, '-' (stdin) or --file: exactly one of them."""
    if (sql is None) == (sql_file is None):
        raise UsageError("give the SQL as an argument, '-' to read it from stdin, or --file")
    if sql_file is not None:
        try:
            return sql_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--file {sql_file}: cannot read it: {exc}") from None
    assert sql is not None
    return sys.stdin.read() if sql == "-" else sql


@app.command()
@examples("evlog tables", "evlog tables --json")
def tables(
    ctx: typer.Context,
    fmt: Annotated[str | None, FORMAT] = None,
    as_json: Annotated[bool, AS_JSON] = False,
    as_csv: Annotated[bool, AS_CSV] = False,
) -> None:
    """List the analytics' tables and views (what a query can read), with their columns."""
    from evlog import rendering

    fmt = output_format(fmt, json=as_json, csv=as_csv)
    rendering.write(settings(ctx).tables(), fmt)


@app.command()
@examples("evlog schema", "evlog schema messages --json")
def schema(
    ctx: typer.Context,
    table: Annotated[str | None, typer.Argument(help="Only this table or view.")] = None,
    fmt: Annotated[str | None, FORMAT] = None,
    as_json: Annotated[bool, AS_JSON] = False,
    as_csv: Annotated[bool, AS_CSV] = False,
) -> None:
    """Show the columns and types of every table and view (or of TABLE)."""
    from evlog import rendering

    fmt = output_format(fmt, json=as_json, csv=as_csv)
    rendering.write(settings(ctx).schema(table), fmt)
