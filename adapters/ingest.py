"""The ingest driver: runs an adapter and appends each batch with its checkpoint in one commit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

from eventlog import EventLog, SourceCheckpoint

from .base import Adapter, Batch


@dataclass(slots=True)
class IngestStats:
    source: str
    appended: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    seconds: float = 0.0
    commit_latencies_ns: list[int] = field(default_factory=list)

    def merge(self, other: IngestStats) -> None:
        self.appended += other.appended
        self.duplicates += other.duplicates
        self.dead_letters += other.dead_letters
        self.batches += other.batches
        self.commit_latencies_ns += other.commit_latencies_ns


async def ingest(
    log: EventLog,
    adapter: Adapter,
    *,
    on_batch: Callable[[Batch, IngestStats], None] | None = None,
) -> IngestStats:
    """Read `adapter` from its stored checkpoint to its end, appending as it goes.

    Reading the next batch overlaps the commit of the previous one (a one-batch queue), but commits
    are strictly in order, one at a time, so a failed commit can never be overtaken by a later
    checkpoint."""
    stats = IngestStats(adapter.source)
    started = time.perf_counter()
    checkpoint = await log.source_checkpoint(adapter.source)
    queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=1)

    async def read() -> None:
        async with aclosing(_batches(adapter, checkpoint)) as batches:
            async for batch in batches:
                await queue.put(batch)
        await queue.put(None)

    try:
        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(read())
            while (batch := await queue.get()) is not None:
                t0 = time.perf_counter_ns()
                results = await log.append_many(
                    batch.events,
                    checkpoint=(
                        None
                        if batch.position is None
                        else SourceCheckpoint(adapter.source, batch.position)
                    ),
                    dead_letters=batch.dead_letters,
                )
                stats.commit_latencies_ns.append(time.perf_counter_ns() - t0)
                stats.batches += 1
                stats.dead_letters += len(batch.dead_letters)
                for r in results:
                    if r.duplicate:
                        stats.duplicates += 1
                    else:
                        stats.appended += 1
                if on_batch is not None:
                    on_batch(batch, stats)
            await reader
    except BaseExceptionGroup as group:
        # One failure (e.g. an unreadable input) is the caller's error, not a group of them.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    stats.seconds = time.perf_counter() - started
    return stats


def _batches(adapter: Adapter, checkpoint: object) -> AsyncGenerator[Batch, None]:
    return adapter.batches(checkpoint)
