"""`evlog demo`: the bundled sample ingested, projected and queried."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..runtime import run

# Adapters, the projector (DuckDB, Arrow) and the live servers are imported by the commands that
# use them, not here: every command would otherwise pay ~0.3 s to start (`import evlog.cli`).
if TYPE_CHECKING:
    pass


from .common import (
    app,
    examples,
)


@app.command()
@examples(
    "evlog demo",
    "evlog demo --workdir /tmp/evlog-demo",
)
def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="Where to write (default: a new temp dir).")
    ] = None,
) -> None:
    """Run the main job on the bundled sample: ingest, project, query, latency.

    Works in a new temporary directory (or --workdir) and leaves the files there to explore."""
    from ..demo import run_demo

    run(run_demo(workdir))
