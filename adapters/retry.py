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
from .mapping import Mapping, build

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
    """Retry the open dead letters of `source` (None: of every source), BATCH at a time in the
    order they were made: memory holds one page, however many there are."""
    sources: dict[str, _Source] = {}
    after = 0
    while page := await log.dead_letters(
        source=source, limit=BATCH, resolved=False, raw_bytes=True, after=after
    ):
        after = int(page[-1]["id"])
        by_source: dict[str, list[dict[str, Any]]] = {}
        for letter in page:
            by_source.setdefault(letter["source"], []).append(letter)
        for name, letters in by_source.items():
            if name not in sources:
                sources[name] = await _Source.open(log, name)
            found = sources[name]
            if found.adapter is not None:
                await _retry_batch(log, found.adapter, found.checkpoint, letters, found.stats)
    return [sources[name].stats for name in sorted(sources)]


@dataclass(slots=True)
class _Source:
    """A source being retried: its adapter with its stored mapping (None: skipped, the stats
    say why) and its checkpoint."""

    stats: RetryStats
    adapter: LineFileAdapter | None = None
    checkpoint: Any = None

    @classmethod
    async def open(cls, log: LogStore, source: str) -> _Source:
        stats = RetryStats(source)
        checkpoint = await log.source_checkpoint(source)
        mapping = Mapping.from_json(
            checkpoint.get("mapping") if isinstance(checkpoint, dict) else None
        )
        if not source.startswith("file:") or mapping is None:
            stats.skipped = "no mapping stored for it (ingest it again, then retry)"
            return cls(stats)
        path = Path(source.removeprefix("file:"))
        try:
            adapter = await asyncio.to_thread(build, path, mapping)
        except Exception as exc:
            stats.skipped = f"cannot read it with its mapping: {exc}"
            return cls(stats)
        if not isinstance(adapter, LineFileAdapter):
            stats.skipped = (
                f"retry reads jsonl, csv and log records; for a {mapping.adapter} export,"
                " `evlog source reset` it and ingest it again (its keys keep what is there)"
            )
            return cls(stats)
        return cls(stats, adapter, checkpoint)


async def _retry_batch(
    log: LogStore,
    adapter: LineFileAdapter,
    checkpoint: Any,
    letters: list[dict[str, Any]],
    stats: RetryStats,
) -> None:
    # Off the loop: a record may be read again from its file, and parsing is work.
    batches = await asyncio.to_thread(lambda: [adapter.reread(d, checkpoint) for d in letters])
    events: list[NewEvent] = []
    resolves: list[tuple[int, int]] = []
    for letter, batch in zip(letters, batches, strict=True):
        stats.tried += 1
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
