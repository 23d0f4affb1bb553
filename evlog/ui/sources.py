"""Where the live page reads from: the follower's own projector (`--ui` on `project --follow` and
`watch`), or the files as they are (`evlog ui`: read-only, through a running follower's socket
when there is one). Both answer the same few questions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from evlog import analytics
from evlog.eventlog.store import LogStore
from evlog.projector import Projector, QueryError, QueryResult

from ..runtime import UserError


class Source(Protocol):
    log: LogStore
    live: bool  # whether live batches are observed (a LatencyWindow can subscribe)

    async def query(
        self, sql: str, max_rows: int | None = None, background: bool = False
    ) -> QueryResult:
        """Trusted SQL (the panels', or a table copy for the sandbox); `background`: nobody is
        waiting on it at once (a panel's refresh), so it may yield to the live path."""
        ...

    async def progress(self) -> dict[str, Any]:
        """log_head, position, lag_events, lag_seconds, projected_total."""
        ...


class FollowerSource:
    """The projector this process runs."""

    live = True

    def __init__(
        self, projector: Projector, more: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self.projector = projector
        self.log = projector.log
        self.more = more  # the command's own figures (`evlog serve`'s), in every point

    async def query(
        self, sql: str, max_rows: int | None = None, background: bool = False
    ) -> QueryResult:
        return await self.projector.query(sql, max_rows=max_rows, background=background)

    async def progress(self) -> dict[str, Any]:
        head, lag_events, lag_s = await self.projector.lag()
        out = {
            "log_head": head,
            "position": self.projector.position,
            "lag_events": lag_events,
            "lag_seconds": round(lag_s, 3),
            "projected_total": self.projector.applied_events,
        }
        if self.more is not None:
            out.update(self.more())
        return out


class FileSource:
    """The analytics file (or the follower serving it) and the log, read-only."""

    live = False

    def __init__(self, log: LogStore, duckdb_path: Path) -> None:
        self.log = log
        self.duckdb_path = duckdb_path

    async def query(
        self, sql: str, max_rows: int | None = None, background: bool = False
    ) -> QueryResult:
        try:
            return await asyncio.to_thread(
                analytics.query, self.duckdb_path, sql, max_rows=max_rows
            )
        except UserError as exc:
            raise QueryError(str(exc)) from None

    async def progress(self) -> dict[str, Any]:
        try:
            state = await asyncio.to_thread(analytics.projection_state, self.duckdb_path)
        except (UserError, OSError):
            state = {}
        position = min((s["position"] for s in state.values()), default=0)
        head, lag_events, lag_s = await self.log.behind(position)
        return {
            "log_head": head,
            "position": position,
            "lag_events": lag_events,
            "lag_seconds": round(lag_s, 3),
            "projected_total": None,
        }
