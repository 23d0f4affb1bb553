"""Reading dead letters again with their source's current mapping (`evlog deadletters retry`):
a record that now reads becomes an event under the key it would have had, and its dead letter
is marked resolved in the same transaction, so a retry appends each record at most once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evlog.eventlog import NewEvent, encode_valid
from evlog.eventlog.store import LogStore

from .linefile import LineFileAdapter
from .mapping import build

BATCH = 1000


@dataclass(slots=True)
class RetryStats:
    """Per source: dead letters read again, how many became events (appended, or already in
    the log under their key), and those that still fail, with why."""

    source: str
    tried: int = 0
    resolved: int = 0
    still_failing: int = 0
    skipped: str | None = None  # why this source's dead letters were not tried
    reasons: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "tried": self.tried,
            "resolved": self.resolved,
            "still_failing": self.still_failing,
            "skipped": self.skipped,
            "reasons": self.reasons,
        }


async def retry_dead_letters(log: LogStore, source: str | None = None) -> list[RetryStats]:
    """Retry the open dead letters of `source` (None: of every source)."""
    letters = await log.dead_letters(source=source, limit=None, resolved=False, raw_bytes=True)
    by_source: dict[str, list[dict[str, Any]]] = {}
    for letter in letters:
        by_source.setdefault(letter["source"], []).append(letter)
    return [await _retry_source(log, src, found) for src, found in sorted(by_source.items())]


async def _retry_source(log: LogStore, source: str, letters: list[dict[str, Any]]) -> RetryStats:
    stats = RetryStats(source)
    checkpoint = await log.source_checkpoint(source)
    mapping = checkpoint.get("mapping") if isinstance(checkpoint, dict) else None
    if not source.startswith("file:") or mapping is None:
        stats.skipped = "no mapping stored for it (ingest it again, then retry)"
        return stats
    path = Path(source.removeprefix("file:"))
    try:
        adapter = await asyncio.to_thread(build, path, mapping)
    except Exception as exc:
        stats.skipped = f"cannot read it with its mapping: {exc}"
        return stats
    if not isinstance(adapter, LineFileAdapter):
        stats.skipped = (
            f"retry reads jsonl, csv and log records; for a {mapping['adapter']} export,"
            " `evlog source reset` it and ingest it again (its keys keep what is there)"
        )
        return stats
    for i in range(0, len(letters), BATCH):
        await _retry_batch(log, adapter, checkpoint, letters[i : i + BATCH], stats)
    return stats


async def _retry_batch(
    log: LogStore,
    adapter: LineFileAdapter,
    checkpoint: Any,
    letters: list[dict[str, Any]],
    stats: RetryStats,
) -> None:
    events: list[NewEvent] = []
    resolves: list[tuple[int, int]] = []
    for letter in letters:
        stats.tried += 1
        batch = adapter.reread(letter, checkpoint)
        encoded, rejected = encode_valid(batch.events)
        if batch.events and not rejected:
            resolves.append((letter["id"], len(events)))
            events.append(batch.events[0])
            continue
        stats.still_failing += 1
        why = batch.dead_letters[0].error if batch.dead_letters else rejected[0][1]
        stats.reasons[why] = stats.reasons.get(why, 0) + 1
    if events:
        encoded, _ = encode_valid(events)
        await log.append_encoded(encoded, resolves=resolves)
        stats.resolved += len(resolves)
