"""`evlog export` and `evlog snapshot`: the analytics written to files other tools read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import output
from ..runtime import UserError
from .common import (
    app,
    examples,
    settings,
)


@app.command()
@examples(
    "evlog export messages messages.parquet",
    "evlog export \"SELECT * FROM events WHERE stream = 'jsonl/chat'\" chat.jsonl",
)
def export(
    ctx: typer.Context,
    what: Annotated[str, typer.Argument(help="A table or view name, or a read-only SELECT.")],
    out: Annotated[Path, typer.Argument(help="The file to write: .parquet, .csv, .tsv or .jsonl.")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="parquet, csv or jsonl (default: from OUT's name)."),
    ] = None,
) -> None:
    """Write a table's or a query's rows to Parquet, CSV or JSON lines.

    DuckDB's COPY writes it (types kept in Parquet; JSON columns nested in JSON lines). Works
    while a follower runs: the follower writes the file."""
    rows = settings(ctx).export(what, out, fmt)
    output.say(f"wrote {rows:,} rows to {out}")


@app.command()
@examples(
    "evlog snapshot now.duckdb && duckdb -readonly now.duckdb 'FROM messages'",
)
def snapshot(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="The DuckDB file to write (replaced if it exists).")],
) -> None:
    """Copy every projection into a DuckDB file other tools can open.

    For the duckdb CLI, a notebook or a BI tool while a follower holds the live file (DuckDB
    lets one process have it). Run it again to refresh; it includes rows the follower has not
    flushed yet. From Python, evlog.analytics.query() reaches a follower directly."""
    from evlog import analytics

    s = settings(ctx)
    if not out.parent.is_dir():
        raise UserError(f"{out.parent}: no such directory")
    tables = analytics.snapshot(s.duckdb, out, s.catalog().projections)
    output.say(f"wrote {sum(tables.values()):,} rows in {len(tables)} tables to {out}")
