"""`evlog source reset`: forget a source's checkpoint."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..runtime import UserError, run
from .common import (
    app,
    examples,
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

    async def go() -> bool:
        async with await s.open_log() as log:
            return await log.forget_source(name)

    if not run(go()):
        raise UserError(f"{name}: no such source in {s.log_target} (see `evlog status --json`)")
    output.stderr.print(f"{name}: reset; the next ingest reads it from the start")
