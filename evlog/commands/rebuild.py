"""`evlog rebuild`: projections made again from the log (Workspace.rebuild)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from .. import output
from .common import (
    _progress_printer,
    _say_refused,
    app,
    examples,
    settings,
)


@app.command()
@examples(
    "evlog rebuild",
    "evlog rebuild messages --from 5000",
)
def rebuild(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Projections to rebuild (default: all).")
    ] = None,
    from_seq: Annotated[
        int, typer.Option("--from", help="Keep rows up to this seq; replay the rest.")
    ] = 0,
) -> None:
    """Rebuild projections from the log beside the live tables, then swap.

    Queries keep answering from the old tables until the swap; prints the events replayed
    per projection. A damaged analytics file is moved aside and rebuilt whole."""
    s = settings(ctx)
    _say_refused(s.catalog())
    t0 = time.perf_counter()
    replayed = s.rebuild(names, from_seq, progress=_progress_printer(), on_note=output.say)
    dt = time.perf_counter() - t0
    # One pass over the log feeds every chosen projection: its events are counted once.
    events = max(replayed.values(), default=0)
    if replayed:
        output.say(
            f"one pass of {events:,} events into {len(replayed)} projections in {dt:.2f} s"
            f" ({events / dt if dt else 0:,.0f} events/s)"
        )
    for name, n in replayed.items():
        output.stderr.print(f"rebuilt {name}: {n} events replayed")
