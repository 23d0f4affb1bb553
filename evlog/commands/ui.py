"""`evlog ui`: the live page over the files as they are (read-only)."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..latency_report import parse_duration_s
from ..runtime import UserError, run, until_signalled
from .common import (
    Settings,
    app,
    examples,
    settings,
)


@app.command()
@examples(
    "evlog ui",
    "evlog ui --port 8765 --budget 20ms",
)
def ui(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 0,
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless you say).")] = (
        "127.0.0.1"
    ),
    budget: Annotated[str, typer.Option(help="Latency budget drawn on the charts.")] = "50ms",
) -> None:
    """Open the live page over the log and analytics as they are, read-only.

    Nothing is projected: run it beside `evlog project --follow` (whose queries it goes
    through) or after `evlog project`. A follower started with --ui serves the same page
    with its live latency. The URL printed at start carries the token the page needs."""
    s = settings(ctx)
    budget_ms = parse_duration_s(budget, "ms") * 1000
    if s.log is None and not s.db.exists():
        raise UserError(f"{s.db}: no event log yet (run `evlog ingest` first)")
    run(until_signalled(_ui(s, port, host, budget_ms)))


async def _ui(s: Settings, port: int, host: str, budget_ms: float) -> None:
    import asyncio

    from ..ui.app import serve_ui
    from ..ui.sources import FileSource

    info = {"mode": "read-only", "log": str(s.log_target), "duckdb": str(s.duckdb)}
    async with (
        await s.open_log(writable=False) as log,
        serve_ui(FileSource(log, s.duckdb), port, host, info=info, budget_ms=budget_ms) as page,
    ):
        output.say(f"the live page (read-only): {page.url}  (Ctrl-C to stop)")
        await asyncio.Event().wait()
