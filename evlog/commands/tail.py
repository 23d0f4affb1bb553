"""`evlog tail`: the last events of the log, and the new ones as they commit."""

from __future__ import annotations

import sys
from contextlib import aclosing
from typing import Annotated, Any

import typer

from .. import output
from ..runtime import run, until_signalled
from .common import (
    app,
    examples,
    settings,
)


@app.command()
@examples(
    "evlog tail -n 20",
    "evlog tail --no-follow --json | jq .payload",
)
def tail(
    ctx: typer.Context,
    last: Annotated[int, typer.Option("--last", "-n", help="Show this many past events.")] = 10,
    follow: Annotated[bool, typer.Option(help="Keep printing new events.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print the last events, then new ones as they commit.

    Ctrl-C stops it; --no-follow prints the last events and exits."""
    s = settings(ctx)

    async def go() -> None:
        async with await s.open_log(writable=False) as log:
            head = await log.head()
            start = max(0, head - last)
            if not follow:
                for ev in await log.read(start, limit=last):
                    _print_event(ev, as_json)
                return
            async with aclosing(log.follow(start)) as batches:
                async for batch in batches:
                    for ev in batch:
                        _print_event(ev, as_json)

    run(until_signalled(go()))


def _print_event(ev: Any, as_json: bool) -> None:
    if as_json:
        output.print_json(ev.to_dict())
    else:
        sys.stdout.write(f"{ev.seq}\t{ev.stream}@{ev.version}\t{ev.type}\t{ev.payload_json}\n")
        sys.stdout.flush()
