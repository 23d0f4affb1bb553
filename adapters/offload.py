"""Parsing a large file in another process: the child runs the adapter and encodes its events
(eventlog.encode_events); this process only appends them. In one process the parser's Python
and the writer thread share a GIL and take turns; apart, they run side by side on two cores
(docs/performance.md#ingest). Positions and keys are the adapter's own, so exactly-once
is unchanged."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

from evlog.eventlog import encode_valid

from .base import Adapter, Batch
from .ingest import rejected_letter

# Files at least this large are parsed in a child process (env EVLOG_OFFLOAD_BYTES overrides).
OFFLOAD_BYTES_DEFAULT = 32 << 20
QUEUE_BATCHES = 4


def offload_threshold() -> int:
    return int(os.environ.get("EVLOG_OFFLOAD_BYTES") or OFFLOAD_BYTES_DEFAULT)


def _watch_parent(parent: int) -> None:
    """End this process as soon as the ingest that started it is gone (e.g. kill -9): whatever
    it was sending has no reader any more, and a queue's feeder would wait for one forever."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _child(make: Callable[[], Adapter], checkpoint: Any, out: Any, parent: int) -> None:
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()

    async def run() -> None:
        adapter = make()
        async for batch in adapter.batches(checkpoint):
            encoded, rejected = encode_valid(batch.events)
            dead = batch.dead_letters
            dead += [rejected_letter(adapter.source, batch.events[i], why) for i, why in rejected]
            out.put((encoded, dead, batch.position, batch.records, batch.held_back, batch.notes))

    try:
        asyncio.run(run())
    except BaseException as exc:  # handed to the parent, which raises it as its own
        out.put(("error", exc))
        return
    out.put(None)


async def offloaded(make: Callable[[], Adapter], checkpoint: Any) -> AsyncGenerator[Batch, None]:
    """The batches `make()`'s adapter would yield from `checkpoint`, parsed in a child process
    (spawned, not forked: this process has threads)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue(maxsize=QUEUE_BATCHES)
    child = ctx.Process(
        target=_child, args=(make, checkpoint, out, os.getpid()), name="evlog-parse", daemon=True
    )
    await asyncio.to_thread(child.start)

    def get() -> Any:
        while True:
            try:
                return out.get(timeout=0.5)
            except queue.Empty:
                if not child.is_alive():
                    raise RuntimeError(f"the parsing process exited ({child.exitcode})") from None

    try:
        while (item := await asyncio.to_thread(get)) is not None:
            if item[0] == "error":
                raise item[1]
            encoded, dead_letters, position, records, held_back, notes = item
            yield Batch(
                dead_letters=dead_letters,
                position=position,
                encoded=encoded,
                records=records,
                held_back=held_back,
                notes=notes,
            )
    finally:
        if child.is_alive():
            child.terminate()
        await asyncio.to_thread(child.join)
        out.close()
