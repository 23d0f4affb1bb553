"""What both log backends derive from their own primitives (read_rows, follow_rows, head,
append_many, close): decoded reads, lag, single appends and `async with`."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Sequence
from types import TracebackType
from typing import Any, Self

from .columns import COMMITTED
from .envelope import AppendResult, AppendResults, Event, NewEvent, event_from_row


class LogBase:
    """Mixed into EventLog and JetStreamLog; each supplies the primitives below."""

    # Whether every sequence up to the head is an event (the SQLite log), or sequences skip the
    # log's other records (JetStream: checkpoints and dead letters take sequences too).
    contiguous_seqs = True

    async def close(self) -> None:
        raise NotImplementedError

    async def read_rows(self, after: int = 0, limit: int = 1000) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def follow_rows(
        self, after: int = 0, *, batch_limit: int = 1000
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        raise NotImplementedError

    async def head(self) -> int:
        raise NotImplementedError

    async def append_many(
        self, events: Sequence[NewEvent], *, expected_version: int | None = None
    ) -> AppendResults:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def append(self, event: NewEvent, *, expected_version: int | None = None) -> AppendResult:
        """Append one event; see append_many. Returns its AppendResult (duplicate=True, with the
        original's seq, if its key is already in the log)."""
        return (await self.append_many([event], expected_version=expected_version))[0]

    async def read(self, after: int = 0, limit: int = 1000) -> list[Event]:
        """Events with seq > `after`, in order, at most `limit`."""
        return [event_from_row(r) for r in await self.read_rows(after, limit)]

    async def follow(
        self, after: int = 0, *, batch_limit: int = 1000
    ) -> AsyncGenerator[list[Event], None]:
        """Yield batches of new events forever, starting after `after` (see follow_rows).
        Use with `contextlib.aclosing` to release its resources early."""
        async for rows in self.follow_rows(after, batch_limit=batch_limit):
            yield [event_from_row(r) for r in rows]

    async def behind(self, position: int) -> tuple[int, int, float]:
        """How far a reader at `position` is behind: (head, events after it (an upper bound
        where sequences are not contiguous), age in seconds of the oldest of those, from its
        commit stamp)."""
        head = await self.head()
        age_s = 0.0
        if head > position:
            oldest = await self.read_rows(position, 1)
            if oldest:
                age_s = max(0.0, (time.time_ns() - int(oldest[0][COMMITTED])) / 1e9)
        return head, max(0, head - position), age_s
