"""What a long-running follower (`project --follow`, `watch`) offers other processes: the query
socket always, the Prometheus metrics endpoint when a port is given, and the live page (evlog/ui)
when a port is given for it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evlog.projector import Projector

from .metrics import serve_metrics
from .server import serve


@dataclass(frozen=True, slots=True)
class Exposure:
    """Ports (None: not served; 0: any free one) and the addresses to bind them to."""

    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    ui_port: int | None = None
    ui_host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Exposed:
    """`where`: a phrase for the startup line; `page_url`: the live page's URL with its token
    (printed on a line of its own, so that it can be copied whole)."""

    where: str
    page_url: str | None

    def lines(self, first: str) -> list[str]:
        """The startup line (`first` with `where` in parentheses), then the page's."""
        out = [f"{first} ({self.where}); Ctrl-C to stop"]
        if self.page_url:
            out.append(f"the live page: {self.page_url}")
        return out


@contextlib.asynccontextmanager
async def exposed(
    projector: Projector,
    duckdb: Path,
    exposure: Exposure,
    log_path: Path | str | None = None,
    more_metrics: Callable[[], list[str]] | None = None,
    more_status: Callable[[], dict[str, Any]] | None = None,
) -> AsyncIterator[Exposed]:
    """Yields where to reach it, for the startup lines. `more_metrics`, `more_status`: the
    command's own figures (`evlog serve`'s counters) as exposition lines, served with the
    follower's, and as fields of the page's pipeline points."""
    async with serve(projector, duckdb) as sock, contextlib.AsyncExitStack() as stack:
        where, page_url = f"queries via {sock}", None
        if exposure.metrics_port is not None:
            host, port = await stack.enter_async_context(
                serve_metrics(projector, exposure.metrics_port, exposure.metrics_host, more_metrics)
            )
            where += f", metrics at http://{host}:{port}/metrics"
        if exposure.ui_port is not None:
            from evlog.ui.app import serve_ui  # aiohttp is imported only when the page is asked for
            from evlog.ui.sources import FollowerSource

            info = {"mode": "follower", "log": str(log_path or ""), "duckdb": str(duckdb)}
            page = await stack.enter_async_context(
                serve_ui(
                    FollowerSource(projector, more_status),
                    exposure.ui_port,
                    exposure.ui_host,
                    info=info,
                )
            )
            page_url = page.url
        yield Exposed(where, page_url)
