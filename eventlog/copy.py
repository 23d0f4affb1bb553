"""Copy one log into another (SQLite <-> JetStream): every event in order, then the sources'
checkpoints and the open dead letters. Resumable and idempotent: each batch is appended with a
checkpoint of the copy itself, so a copy stopped half way goes on where it stopped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .columns import (
    KEY,
    METADATA,
    PAYLOAD,
    READ,
    SCHEMA_VERSION,
    SEQ,
    SOURCE_TIME,
    STREAM,
    TYPE,
    WRITTEN,
)
from .encoding import EncodedEvents
from .envelope import DeadLetter, SourceCheckpoint
from .store import LogStore

COPY_BATCH = 999  # one atomic batch on JetStream with its checkpoint


@dataclass(slots=True)
class CopyStats:
    events: int = 0
    duplicates: int = 0
    checkpoints: int = 0
    dead_letters: int = 0
    resumed_after: int = 0


def _encoded(rows: list[tuple[Any, ...]]) -> EncodedEvents:
    params: list[Any] = []
    for r in rows:
        params += (
            r[STREAM], 0, r[TYPE], r[SCHEMA_VERSION], r[KEY], r[PAYLOAD], r[METADATA],
            r[SOURCE_TIME], r[READ], 0, r[WRITTEN], 0,
        )  # fmt: skip
    return EncodedEvents(params)


async def copy_log(
    src: LogStore, dst: LogStore, *, on_batch: Callable[[CopyStats], None] | None = None
) -> CopyStats:
    """Copy `src` into `dst`. Sequences are the target's own; each stream's versions come out
    the same, since its events go in order."""
    me = f"copy:{src.where}"
    stats = CopyStats()
    done = await dst.source_checkpoint(me)
    after = int(done["seq"]) if isinstance(done, dict) else 0
    stats.resumed_after = after
    while True:
        rows = await src.read_rows(after, COPY_BATCH)
        if not rows:
            break
        after = rows[-1][SEQ]
        results = await dst.append_encoded(
            _encoded(rows), checkpoint=SourceCheckpoint(me, {"seq": after})
        )
        stats.events += len(results) - results.duplicates
        stats.duplicates += results.duplicates
        if on_batch is not None:
            on_batch(stats)
    # Then what the sources had read, so an ingest against the target resumes where the one
    # against the source stopped; and the records still waiting in the dead-letter table.
    for cp in await src.source_checkpoints():
        if cp["source"].startswith("copy:"):
            continue
        await dst.append_encoded(
            EncodedEvents([]), checkpoint=SourceCheckpoint(cp["source"], cp["position"])
        )
        stats.checkpoints += 1
    letters = [
        DeadLetter(d["source"], d["position"], d["error"], d["raw"], d.get("key"))
        for d in await src.dead_letters(limit=None, resolved=False, raw_bytes=True)
    ]
    for i in range(0, len(letters), COPY_BATCH):
        await dst.append_encoded(EncodedEvents([]), dead_letters=letters[i : i + COPY_BATCH])
    stats.dead_letters = len(letters)
    return stats
