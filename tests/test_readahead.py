"""The rebuild's read-ahead (projector/readahead.py): it hands over the rows read ahead only for
the position they were read after, trimmed to what is asked, and drops them otherwise."""

from __future__ import annotations

import asyncio
from typing import Any

from evlog.projector.readahead import ReadAhead


async def test_rows_read_ahead_are_used_once_for_their_position_and_dropped_otherwise() -> None:
    calls: list[tuple[int, int]] = []
    started = asyncio.Event()

    async def read(after: int, limit: int) -> list[tuple[Any, ...]]:
        calls.append((after, limit))
        started.set()
        await asyncio.sleep(0)
        return [(seq,) for seq in range(after + 1, after + 1 + limit)]

    ahead = ReadAhead(read)
    assert await ahead.read(0, 3) == [(1,), (2,), (3,)]
    ahead.ahead(3, 5)
    await started.wait()
    assert await ahead.read(3, 2) == [(4,), (5,)]  # the read ahead, trimmed to the limit
    assert calls == [(0, 3), (3, 5)]
    ahead.ahead(5, 4)
    assert await ahead.read(9, 1) == [(10,)]  # another position: read anew
    assert calls[-1] == (9, 1)
    ahead.ahead(10, 2)
    await ahead.aclose()  # nobody took it: dropped, no task left behind
    assert await ahead.read(10, 1) == [(11,)] and calls[-1] == (10, 1)
