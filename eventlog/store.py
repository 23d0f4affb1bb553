"""The log-store interface both backends implement (the SQLite file, a NATS JetStream stream),
and `open_log`, which picks the backend from where the log is: a path or a `nats://` URL.

Adapters, the projector and the application talk to `LogStore` (or one narrow part of it)
only. The rules every backend keeps are tests/test_logstore_contract.py's LogStoreContract, a
base class each backend's tests subclass."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from .encoding import EncodedEvents
from .envelope import AppendResults, DeadLetter, Event, NewEvent, SourceCheckpoint
from .sqlite.connection import Durability
from .target import is_nats


class EventRecorder(Protocol):
    """Appending: events, with the checkpoint and dead letters of the batch they came from, in
    one atomic commit."""

    async def append_many(
        self,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None = None,
        checkpoint: SourceCheckpoint | None = None,
        dead_letters: Sequence[DeadLetter] = (),
    ) -> AppendResults:
        """Append `events` in order, all or none. An event whose key is in the log already is
        a duplicate (its result carries the original's seq) and appends nothing.
        `expected_version`: the version the (one) stream must be at, else ConcurrencyError.
        `checkpoint` and `dead_letters` commit with the events (either all are in the log after
        a crash, or none)."""
        ...

    async def append_encoded(
        self,
        events: EncodedEvents,
        *,
        checkpoint: SourceCheckpoint | None = None,
        dead_letters: Sequence[DeadLetter] = (),
        resolves: Sequence[tuple[int, int]] = (),
    ) -> AppendResults:
        """`append_many` of events encoded already (eventlog/encoding.py: the bulk path).
        `resolves`: (dead letter id, index of the event here) pairs marked resolved by it in
        the same commit (a retry)."""
        ...


class EventReader(Protocol):
    """Reading: rows in eventlog/columns.py's READ_ORDER, in increasing `seq` (contiguous only
    where `contiguous_seqs`), as a page or followed as they commit."""

    contiguous_seqs: bool  # every sequence up to the head is an event

    async def read(self, after: int = 0, limit: int = 1000) -> list[Event]:
        """Events with seq > `after`, in order, at most `limit`."""
        ...

    async def read_rows(self, after: int = 0, limit: int = 1000) -> list[tuple[Any, ...]]:
        """`read`'s rows as tuples in READ_ORDER (the projector's path: nothing decoded)."""
        ...

    def follow_rows(
        self, after: int = 0, *, batch_limit: int = 1000
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """Batches of rows with seq > `after` as they commit, from any process, forever."""
        ...

    def follow(
        self, after: int = 0, *, batch_limit: int = 1000
    ) -> AsyncGenerator[list[Event], None]:
        """`follow_rows` decoded into Events."""
        ...

    async def head(self) -> int:
        """The last sequence handed out (0: an empty log)."""
        ...

    async def behind(self, position: int) -> tuple[int, int, float]:
        """(head, events after `position`, seconds since the oldest of them committed)."""
        ...

    async def log_id(self) -> str | None:
        """Which log this is (an analytics file refuses to mix two)."""
        ...


class SourceTracker(Protocol):
    """Where each source was read to (committed with its events): a re-run resumes there."""

    async def source_checkpoint(self, source: str) -> Any | None:
        """`source`'s stored checkpoint (its resume point and mapping), or None."""
        ...

    async def source_checkpoints(self) -> list[dict[str, Any]]:
        """Every source's: {"source", "position", "last_seq", "updated_ns"}."""
        ...

    async def forget_source(self, source: str) -> bool:
        """Delete `source`'s checkpoint (its events stay; their keys keep a re-read from
        appending them again). Whether there was one."""
        ...

    async def known_sources(self) -> set[str]:
        """Every source with a checkpoint or a dead letter."""
        ...


class DeadLetterStore(Protocol):
    """Records a source could not turn into events, each with its reason and raw record, until
    a retry resolves it or it is purged."""

    async def dead_letter_count(self, *, open_only: bool = False) -> int:
        """How many the log holds (only those still open, if asked)."""
        ...

    async def dead_letters(
        self,
        *,
        source: str | None = None,
        limit: int | None = 100,
        resolved: bool | None = False,
        raw_bytes: bool = False,
        after: int | None = None,
    ) -> list[dict[str, Any]]:
        """The newest `limit` dead letters (None: all), oldest first; with `after`, the oldest
        `limit` whose id is greater (a page of a walk through them all). `resolved`: False for
        open ones, True for those a retry resolved, None for both."""
        ...

    async def dead_letter(self, id_: int) -> dict[str, Any] | None:
        """One by id (its raw record as bytes), or None."""
        ...

    async def purge_dead_letters(
        self,
        *,
        source: str | None = None,
        older_than_ns: int | None = None,
        resolved_only: bool = False,
    ) -> int:
        """Delete those that match (of `source`, made before `older_than_ns`, only resolved
        ones); how many."""
        ...


@runtime_checkable
class LogStore(EventRecorder, EventReader, SourceTracker, DeadLetterStore, Protocol):
    """An append-only log of events with per-source checkpoints and dead letters: the one
    interface both backends implement (eventlog/sqlite/log.py, eventlog/jetstream/log.py) and
    adapters, the projector and the application talk to. Its parts, each narrow (as the
    eventsourcing library splits its recorders): EventRecorder, EventReader, SourceTracker,
    DeadLetterStore. A caller that needs one part can ask for that part alone.

    Appends are atomic with their checkpoint and dead letters: after a crash either all of a
    batch's events, its checkpoint and its dead letters are in the log, or the checkpoint is not
    (and a re-run appends nothing twice: keys make it idempotent)."""

    @property
    def where(self) -> str:
        """Where the log is, as a user would name it (a path, a nats:// URL)."""
        ...

    async def close(self) -> None:
        """Finish what is queued and release the log's files or connections."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def stats(self) -> Any:
        """The log's counts and sizes (evlog status)."""
        ...


async def open_log(
    target: str | os.PathLike[str],
    *,
    writable: bool = True,
    durability: Durability = Durability.NORMAL,
) -> LogStore:
    """Open the log at `target`: a SQLite file path, or a `nats://` URL (needs `evlog[nats]`)."""
    if is_nats(target):
        from .jetstream.log import JetStreamLog

        return await JetStreamLog.open(str(target), writable=writable)
    from .sqlite.log import EventLog

    return await EventLog.open(Path(target), writable=writable, durability=durability)
