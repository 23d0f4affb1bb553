"""Reading the log one batch ahead: while the DuckDB thread applies a batch, the log's reader
thread reads the next, so a rebuild's reads and writes overlap instead of taking turns
(docs/performance.md#rebuild)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Rows = Sequence[tuple[Any, ...]]


class ReadAhead:
    """`await read(after, limit)` gives the rows after seq `after`, at most `limit`: the ones
    read ahead by `ahead(after, limit)` when it was asked for the same `after` (trimmed to
    the limit), else a read of its own. `aclose()` drops a read ahead nobody took."""

    def __init__(self, read: Callable[[int, int], Awaitable[Rows]]) -> None:
        self._read = read
        self._next: tuple[int, asyncio.Future[Rows]] | None = None

    async def read(self, after: int, limit: int) -> Rows:
        pending, self._next = self._next, None
        if pending is not None and pending[0] == after:
            return (await pending[1])[:limit]
        if pending is not None:
            await _dropped(pending[1])
        return await self._read(after, limit)

    def ahead(self, after: int, limit: int) -> None:
        """Start reading the rows after `after` (at most `limit`) for the next `read`."""
        if self._next is None and limit > 0:
            self._next = (after, asyncio.ensure_future(self._read(after, limit)))

    async def aclose(self) -> None:
        pending, self._next = self._next, None
        if pending is not None:
            await _dropped(pending[1])


async def _dropped(future: asyncio.Future[Rows]) -> None:
    future.cancel()
    with contextlib.suppress(BaseException):
        await future
