"""The log-store interface both backends implement (the SQLite file, a NATS JetStream stream),
and `open_log`, which picks the backend from where the log is: a path or a `nats://` URL.

Adapters, the projector and the CLI talk to `LogStore` only. The rules every backend keeps are
in tests/test_logstore_contract.py (one suite, run against each backend)."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from .connection import Durability
from .encoding import EncodedEvents
from .envelope import AppendResults, DeadLetter, Event, NewEvent, SourceCheckpoint

NATS_SCHEMES = ("nats://",)


@runtime_checkable
class LogStore(Protocol):
    """An append-only log of events with per-source checkpoints and dead letters.

    Appends are atomic with their checkpoint and dead letters: after a crash either all of a
    batch's events, its checkpoint and its dead letters are in the log, or the checkpoint is not
    (and a re-run appends nothing twice: keys make it idempotent). Readers get rows in
    eventlog/columns.py's READ_ORDER, in increasing `seq` (not necessarily contiguous)."""

    contiguous_seqs: bool  # every sequence up to the head is an event

    @property
    def where(self) -> str:
        """Where the log is, as a user would name it (a path, a nats:// URL)."""
        ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def append_many(
        self,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None = None,
        checkpoint: SourceCheckpoint | None = None,
        dead_letters: Sequence[DeadLetter] = (),
    ) -> AppendResults: ...

    async def append_encoded(
        self,
        events: EncodedEvents,
        *,
        checkpoint: SourceCheckpoint | None = None,
        dead_letters: Sequence[DeadLetter] = (),
        resolves: Sequence[tuple[int, int]] = (),
    ) -> AppendResults: ...

    async def read(self, after: int = 0, limit: int = 1000) -> list[Event]: ...

    async def read_rows(self, after: int = 0, limit: int = 1000) -> list[tuple[Any, ...]]: ...

    def follow_rows(
        self, after: int = 0, *, batch_limit: int = 1000
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]: ...

    def follow(
        self, after: int = 0, *, batch_limit: int = 1000
    ) -> AsyncGenerator[list[Event], None]: ...

    async def head(self) -> int: ...

    async def log_id(self) -> str | None:
        """Which log this is (an analytics file refuses to mix two)."""
        ...

    async def behind(self, position: int) -> tuple[int, int, float]: ...

    async def source_checkpoint(self, source: str) -> Any | None: ...

    async def source_checkpoints(self) -> list[dict[str, Any]]: ...

    async def dead_letter_count(self, *, open_only: bool = False) -> int: ...

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
        `limit` whose id is greater (a page of a walk through them all)."""
        ...

    async def dead_letter(self, id_: int) -> dict[str, Any] | None: ...

    async def forget_source(self, source: str) -> bool: ...

    async def purge_dead_letters(
        self,
        *,
        source: str | None = None,
        older_than_ns: int | None = None,
        resolved_only: bool = False,
    ) -> int: ...

    async def known_sources(self) -> set[str]: ...

    async def stats(self) -> Any: ...


def is_nats(target: str | os.PathLike[str]) -> bool:
    """Whether `target` names a JetStream log (nats://host:port[,host:port...])."""
    return isinstance(target, str) and target.startswith(NATS_SCHEMES)


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
    from .log import EventLog

    return await EventLog.open(Path(target), writable=writable, durability=durability)
