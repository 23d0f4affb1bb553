"""What a long-running follower (`project --follow`, `watch`) offers other processes: the query
socket always, and the Prometheus metrics endpoint when a port is given."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from evlog.projector import Projector

from .metrics import serve_metrics
from .server import serve


@contextlib.asynccontextmanager
async def exposed(
    projector: Projector, duckdb: Path, metrics_port: int | None, metrics_host: str
) -> AsyncIterator[str]:
    """Yields a phrase saying where to reach it, for the startup line."""
    async with serve(projector, duckdb) as sock, contextlib.AsyncExitStack() as stack:
        where = f"queries via {sock}"
        if metrics_port is not None:
            host, port = await stack.enter_async_context(
                serve_metrics(projector, metrics_port, metrics_host)
            )
            where += f", metrics at http://{host}:{port}/metrics"
        yield where
