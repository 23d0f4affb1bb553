"""The ingest driver: runs an adapter and appends each batch with its checkpoint in one commit,
and accounts for every record it read: appended, duplicate, dead-lettered or held back."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import orjson

from evlog.eventlog import (
    DeadLetter,
    EventLogError,
    NewEvent,
    SourceCheckpoint,
    encode_valid,
)
from evlog.eventlog.store import LogStore

from .base import RAW_LIMIT, Adapter, Batch, InputError
from .checkpoints import GenerationRecord

# A batch's read stamp -> when its records were written (see `ingest`).
WrittenClock = Callable[[int], int]
# Called after each batch is appended, with the stats so far (progress, error lines).
OnBatch = Callable[["Batch", "IngestStats"], None]


@dataclass(slots=True)
class IngestStats:
    """What one ingest did. The conservation law: `read` = `appended` + `duplicates` +
    `dead_letters` + `held_back`; `unaccounted` is the difference, and is 0 unless a bug lost
    records (the CLI says so loudly and exits non-zero)."""

    source: str
    read: int = 0
    appended: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    held_back: int = 0
    batches: int = 0
    seconds: float = 0.0
    commit_latencies_ns: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the source could not be read (to its end): why
    read_until_ns: int = 0  # the read stamp of the last batch read (0: none)
    checkpoint: Any = None  # the last checkpoint stored for the source (None: none this run)
    kept: dict[str, GenerationRecord | None] = field(default_factory=dict)  # stored (None: forgot)

    @property
    def unaccounted(self) -> int:
        """Records read but neither appended, duplicate, dead-lettered nor held back: 0."""
        return self.read - (self.appended + self.duplicates + self.dead_letters + self.held_back)

    def law(self) -> str:
        """The conservation law as one line: read N = appended + duplicates + dead-lettered."""
        text = (
            f"read {self.read} = appended {self.appended} + duplicates {self.duplicates}"
            f" + dead-lettered {self.dead_letters}"
        )
        if self.held_back:
            text += f" + held back {self.held_back}"
        if self.unaccounted:
            text += f" (UNACCOUNTED {self.unaccounted})"
        return text

    def to_json(self) -> dict[str, Any]:
        """The counts, notes and error as a JSON-ready dict (the --json summary's per source)."""
        return {
            "source": self.source,
            "read": self.read,
            "appended": self.appended,
            "duplicates": self.duplicates,
            "dead_letters": self.dead_letters,
            "held_back": self.held_back,
            "unaccounted": self.unaccounted,
            "notes": self.notes,
            "error": self.error,
        }

    def merge(self, other: IngestStats) -> None:
        """Add another source's counts to these (for a run's total)."""
        self.read += other.read
        self.appended += other.appended
        self.duplicates += other.duplicates
        self.dead_letters += other.dead_letters
        self.held_back += other.held_back
        self.batches += other.batches
        self.commit_latencies_ns += other.commit_latencies_ns


async def ingest(
    log: LogStore,
    adapter: Adapter,
    *,
    mapping: dict[str, Any] | None = None,
    on_batch: Callable[[Batch, IngestStats], None] | None = None,
    written: WrittenClock | None = None,
) -> IngestStats:
    """Read `adapter` from its stored checkpoint to its end, appending as it goes.

    `mapping` (how the source's records become events) is stored with every checkpoint, so a
    later run can tell whether it reads the source the same way. `written`, if the caller can
    tell when records were written (`evlog watch`): called with each batch's read stamp, it
    gives the written stamp of the batch's events.

    One batch at a time: read, then commit (with its checkpoint), then read the next. Reading
    ahead while a commit runs was slower: the adapter's Python holds the GIL that the writer
    thread needs for every row it binds, and the two convoy (docs/performance.md#ingest).
    Adapters that wait on I/O (git's subprocesses) keep reading ahead inside themselves."""
    stats = IngestStats(adapter.source)
    started = time.perf_counter()
    checkpoint = await log.source_checkpoint(adapter.source)
    stored_mapping = checkpoint.get("mapping") if isinstance(checkpoint, dict) else None
    async with aclosing(_batches(adapter, checkpoint)) as batches:
        async for batch in batches:
            read_ns = _read_stamp(batch)
            if written is not None and read_ns is not None:
                _stamp_written(batch, written(read_ns))
            if await _append(log, adapter.source, batch, mapping, stats):
                stored_mapping = mapping
            stats.read_until_ns = max(stats.read_until_ns, read_ns or 0)
            if on_batch is not None:
                on_batch(batch, stats)
    if mapping is not None and stored_mapping != mapping and isinstance(checkpoint, dict):
        # Nothing new was read, but the source is now read another way (--remap): say so in
        # its checkpoint, so the next run and `deadletters retry` use the new mapping.
        changed = SourceCheckpoint(adapter.source, {**checkpoint, "mapping": mapping})
        await log.append_many([], checkpoint=changed)
    stats.seconds = time.perf_counter() - started
    return stats


def _read_stamp(batch: Batch) -> int | None:
    """The batch's read stamp: its first event's, the earliest (some adapters stamp each event
    as they make it), so a written stamp before it is before every event's read. None: no
    events."""
    if batch.encoded is not None:
        return batch.encoded.first_read_ns()
    return batch.events[0].read_ns if batch.events else None


def _stamp_written(batch: Batch, written_ns: int) -> None:
    if batch.encoded is not None:
        batch.encoded.stamp_written(written_ns)
    for event in batch.events:
        event.written_ns = written_ns


async def _append(
    log: LogStore,
    source: str,
    batch: Batch,
    mapping: dict[str, Any] | None,
    stats: IngestStats,
) -> bool:
    """Append one batch with its checkpoint; returns whether a checkpoint was stored."""
    position = batch.position
    if mapping is not None and isinstance(position, dict):
        position = {**position, "mapping": mapping}
    read_to = None if position is None else SourceCheckpoint(source, position)
    # Kept records are stored before the checkpoint that leaves them out, and forgotten after
    # it: a crash between leaves a record known twice, never a generation forgotten.
    for name, record in batch.kept.items():
        if record is not None:
            await log.append_many([], checkpoint=SourceCheckpoint(name, record))
    t0 = time.perf_counter_ns()
    if batch.encoded is not None:
        results = await log.append_encoded(
            batch.encoded, checkpoint=read_to, dead_letters=batch.dead_letters
        )
    else:
        encoded, rejected = encode_valid(batch.events)
        if rejected:  # events the log cannot store become dead letters, never a failed batch
            batch.dead_letters += [
                rejected_letter(source, batch.events[i], why) for i, why in rejected
            ]
        results = await log.append_encoded(
            encoded, checkpoint=read_to, dead_letters=batch.dead_letters
        )
    stats.commit_latencies_ns.append(time.perf_counter_ns() - t0)
    if position is not None:
        stats.checkpoint = position
    for name, record in batch.kept.items():
        if record is None:
            await log.forget_source(name)
    stats.kept.update(batch.kept)
    stats.batches += 1
    stats.read += batch.records + batch.held_back
    stats.held_back += batch.held_back
    stats.dead_letters += len(batch.dead_letters)
    stats.duplicates += results.duplicates
    stats.appended += len(results) - results.duplicates
    stats.notes += batch.notes
    return read_to is not None


def rejected_letter(source: str, event: NewEvent, reason: str) -> DeadLetter:
    """The dead letter of an event the log cannot store (where it came from, why, its data)."""
    meta = event.metadata
    try:
        meta = orjson.loads(meta) if isinstance(meta, bytes) else meta
        where = f"{meta['source']}:{meta['line']}"  # type: ignore[index]
    except (TypeError, KeyError, orjson.JSONDecodeError):
        where = f"{event.stream}#{event.key}"
    payload = event.payload
    try:
        raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    except TypeError:
        raw = repr(payload).encode()
    return DeadLetter(source, where, reason, raw[:RAW_LIMIT], event.key)


async def ingest_source(
    log: LogStore,
    adapter: Adapter,
    *,
    mapping: dict[str, Any] | None = None,
    on_batch: Callable[[Batch, IngestStats], None] | None = None,
    written: WrittenClock | None = None,
) -> IngestStats:
    """`ingest`, except that a failure to read the source is returned in `stats.error` (one
    line) instead of raised, so the other sources of a run go on. Errors of the log itself
    (disk full, a damaged file) are raised: no other source could be appended either."""
    stats = IngestStats(adapter.source)

    def progress(batch: Batch, now: IngestStats) -> None:
        nonlocal stats
        stats = now
        if on_batch is not None:
            on_batch(batch, now)

    try:
        return await ingest(log, adapter, mapping=mapping, on_batch=progress, written=written)
    except (EventLogError, sqlite3.Error):
        raise
    except Exception as exc:
        stats.error = describe(exc)
        return stats


def describe(exc: BaseException) -> str:
    """One line for a failure to read a source."""
    if isinstance(exc, InputError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return f"{type(exc).__name__}: {exc}"


def _batches(adapter: Adapter, checkpoint: object) -> AsyncGenerator[Batch, None]:
    return adapter.batches(checkpoint)
