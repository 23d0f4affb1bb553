"""`evlog status`: what the log and the analytics hold."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .. import output
from ..runtime import run
from .common import (
    app,
    examples,
    settings,
)


@app.command()
@examples(
    "evlog status",
    "evlog status --json | jq .source_checkpoints",
)
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON on stdout.")] = False,
) -> None:
    """Show the log's head, counts, sources and file sizes."""
    s = settings(ctx)

    async def go() -> tuple[Any, list[dict[str, Any]]]:
        async with await s.open_log(writable=False) as log:
            return await log.stats(), await log.source_checkpoints()

    from evlog.adapters.lineage import is_kept

    stats, stored = run(go())
    sources = [c for c in stored if not is_kept(c["source"])]  # kept records are a source's own
    info = {
        "db": stats.path,
        "head_seq": stats.head_seq,
        "events": stats.events,
        "streams": stats.streams,
        "sources": len(sources),
        "dead_letters": stats.dead_letters,
        "db_bytes": stats.db_bytes,
        "wal_bytes": stats.wal_bytes,
    }
    if as_json:
        output.print_json({**info, "source_checkpoints": sources})
        return
    for k, v in info.items():
        output.stdout.print(f"{k:13s} {v}", highlight=False)
