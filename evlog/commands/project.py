"""`evlog project` (and `--follow`): the analytics brought up to date, or kept so."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .. import output
from ..runtime import UsageError, UserError, run, until_signalled

if TYPE_CHECKING:
    from ..live.exposure import Exposure


from .common import (
    METRICS_HOST,
    METRICS_PORT,
    UI_HOST,
    UI_PORT,
    Settings,
    _progress_printer,
    _say_refused,
    app,
    examples,
    settings,
)


@app.command()
@examples(
    "evlog project",
    "evlog project --follow --metrics-port 9464",
    "evlog project --follow --ui 8765",
)
def project(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep applying new events until Ctrl-C.")
    ] = False,
    flush_every: Annotated[
        float,
        typer.Option(
            help="Seconds between moves of live rows from memory to the file"
            " (0: write live batches straight to the file)."
        ),
    ] = 1.0,
    metrics_port: Annotated[int | None, METRICS_PORT] = None,
    metrics_host: Annotated[str, METRICS_HOST] = "127.0.0.1",
    ui_port: Annotated[int | None, UI_PORT] = None,
    ui_host: Annotated[str, UI_HOST] = "127.0.0.1",
) -> None:
    """Bring the DuckDB analytics up to date (and keep them so with --follow).

    While following, other processes can run `evlog query` and `evlog rebuild`: they are served
    through a local socket, as DuckDB lets only one process write the file."""

    from ..live.exposure import Exposure

    s = settings(ctx)
    from ..ingesting import is_served

    if is_served(s.duckdb):
        raise UserError(f"a follower is already projecting into {s.duckdb}; use `evlog query`")
    if (metrics_port is not None or ui_port is not None) and not follow:
        raise UsageError("--metrics-port and --ui need --follow (or use `evlog ui`)")
    exposure = Exposure(metrics_port, metrics_host, ui_port, ui_host)
    run(until_signalled(_project(s, follow, flush_every, exposure)))


async def _project(s: Settings, follow: bool, flush_every: float, exposure: Exposure) -> None:
    import asyncio

    from evlog.projector import Projector

    from ..live.exposure import exposed
    from ..live.projection_files import follow_projection_files

    catalog = await asyncio.to_thread(s.catalog)
    _say_refused(catalog)
    async with (
        await s.open_log(writable=False) as log,
        await Projector.open(
            log,
            s.duckdb,
            catalog.projections,
            flush_every=flush_every,
            progress=_progress_printer(),
        ) as projector,
    ):
        if not follow:
            n = await projector.catch_up(_progress_printer())
            output.stderr.print(
                f"projected {n} events into {s.duckdb}; position {projector.position}"
            )
            return
        async with (
            exposed(projector, s.duckdb, exposure, s.log_target) as reach,
            asyncio.TaskGroup() as tg,
        ):
            tg.create_task(projector.follow())
            # Said once caught up: from here on, what is committed is followed live.
            await projector.until_live()
            for line in reach.lines(f"following {s.log_target} into {s.duckdb}"):
                output.say(line)
            tg.create_task(
                follow_projection_files(projector, s.projections_dir, s.catalog, output.say)
            )
