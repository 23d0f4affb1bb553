"""`evlog source reset`: forget a source's checkpoint."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..runtime import UserError
from .common import (
    AS_CSV,
    AS_JSON,
    FORMAT,
    app,
    examples,
    output_format,
    settings,
)

source_app = typer.Typer(
    help="The sources read into the log: their checkpoints and options.", rich_markup_mode=None
)


app.add_typer(source_app, name="source")


@source_app.command("reset")
@examples(
    "evlog source reset app.log",
)
def source_reset(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="A source: a path, or its name (evlog status).")],
) -> None:
    """Forget where SOURCE was read to, and its stored options.

    Its next ingest reads it from the start with the options it is given. Its events stay in
    the log, and their keys keep a re-read from appending them twice."""
    s = settings(ctx)
    name = s.source_name(source)
    if not s.reset_source(name):
        raise UserError(f"{name}: no such source in {s.log_target} (see `evlog status --json`)")
    output.stderr.print(f"{name}: reset; the next ingest reads it from the start")


@source_app.command("list")
@examples("evlog source list", "evlog source list --json | jq '.[].position'")
def source_list(
    ctx: typer.Context,
    fmt: Annotated[str | None, FORMAT] = None,
    as_json: Annotated[bool, AS_JSON] = False,
    as_csv: Annotated[bool, AS_CSV] = False,
) -> None:
    """List the sources read into the log: adapter, options, where reading resumes, last read.

    Each is named as `evlog source reset`, `evlog deadletters --source` and retry take it."""
    import datetime

    fmt = output_format(fmt, json=as_json, csv=as_csv)
    found = settings(ctx).sources()
    if fmt == "json":
        output.print_json([one.to_json() for one in found])
        return

    def when(ns: int | None) -> str:
        if ns is None:
            return ""
        return datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC).isoformat(timespec="seconds")

    rows = [
        (one.source, one.adapter or "", one.options, one.position, one.last_seq,
         when(one.updated_ns), one.open_dead_letters)
        for one in found
    ]  # fmt: skip
    columns = ("source", "adapter", "options", "position", "last_seq", "updated", "dead_letters")
    output.print_rows(columns, rows, fmt)
