"""`evlog query`: read-only SQL over the analytics, in every output format."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .. import output
from ..runtime import UsageError

# Adapters, the projector (DuckDB, Arrow) and the live servers are imported by the commands that
# use them, not here: every command would otherwise pay ~0.3 s to start (`import evlog.cli`).
if TYPE_CHECKING:
    pass


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
    sql: Annotated[str, typer.Argument(help="A read-only SQL query over the analytics.")],
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
    are nested objects in --json and --nl."""
    from evlog import analytics, rendering

    s = settings(ctx)
    fmt = output_format(fmt, json=as_json, nl=as_nl, csv=as_csv, tsv=as_tsv)
    if max_rows is not None and max_rows < 0:
        raise UsageError("--max-rows must be 0 or more")
    cap = max_rows if max_rows is not None else (output.TABLE_ROWS if fmt == "table" else None)
    result = analytics.query(s.duckdb, sql, max_rows=cap)
    rendering.write(result, fmt)
    if result.truncated:
        output.say(
            f"(only the first {cap:,} rows; --max-rows N for more, or --csv/--nl for every row)"
        )
