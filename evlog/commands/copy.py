"""`evlog copy`: a log copied between backends (SQLite file, JetStream)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from evlog.eventlog.store import open_log

from .. import output
from ..runtime import run
from .common import (
    app,
    examples,
)


@app.command("copy")
@examples(
    "evlog copy --from .evlog/events.db --to nats://127.0.0.1:4222",
    "evlog copy --from nats://127.0.0.1:4222 --to backup.db",
)
def copy_cmd(
    source: Annotated[str, typer.Option("--from", help="The log to copy: a file or nats:// URL.")],
    target: Annotated[str, typer.Option("--to", help="The log to copy into (made if new).")],
) -> None:
    """Copy a log into another: SQLite file to a JetStream cluster, or back.

    Every event in order (each stream's versions come out the same), then the sources'
    checkpoints (an ingest against the copy resumes where one against the original stopped)
    and the open dead letters. A copy stopped half way goes on where it stopped when run again;
    events already in the target are not appended twice."""
    from evlog.eventlog.copy import copy_log

    async def go() -> Any:
        async with (
            await open_log(source, writable=False) as src,
            await open_log(target) as dst,
        ):
            return await copy_log(src, dst)

    stats = run(go())
    resumed = f" (resumed after seq {stats.resumed_after})" if stats.resumed_after else ""
    output.say(
        f"copied {stats.events:,} events{resumed}, {stats.duplicates:,} already there,"
        f" {stats.checkpoints} source checkpoints, {stats.dead_letters} dead letters"
        f" -> {target}"
    )
