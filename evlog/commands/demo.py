"""`evlog demo`: the bundled sample ingested, projected and queried."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..runtime import run
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
