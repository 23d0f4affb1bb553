"""The event envelope: what producers hand to the log (`NewEvent`) and readers get (`Event`)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, overload

import orjson


@dataclass(slots=True)
class NewEvent:
    """An event not yet in the log.

    `payload` is any JSON-serialisable value; `bytes` are taken as already-encoded JSON (and the
    same for `metadata`, a dict or encoded JSON bytes).
    `key` is the idempotency key: an event whose key is already in the log is never appended again.
    `read_ns` is the wall-clock time (ns) the adapter read it; `written_ns`, if the source can
    tell, when the record was written (it then starts the latency clock: docs/latency.md).
    """

    stream: str
    type: str
    payload: Any
    key: str | None = None
    source_time_ns: int | None = None
    metadata: dict[str, Any] | bytes | None = None
    schema_version: int = 1
    read_ns: int = field(default_factory=time.time_ns)
    written_ns: int | None = None


@dataclass(slots=True, frozen=True)
class Event:
    """An event as committed: `seq` is its global position, `version` its position in its stream."""

    seq: int
    stream: str
    version: int
    type: str
    schema_version: int
    key: str | None
    payload_json: str
    metadata_json: str | None
    source_time_ns: int | None
    read_ns: int
    committed_ns: int
    written_ns: int | None = None

    @property
    def payload(self) -> Any:
        """The payload, decoded from its JSON text."""
        return orjson.loads(self.payload_json)

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The metadata, decoded from its JSON text (None if there is none)."""
        return None if self.metadata_json is None else orjson.loads(self.metadata_json)

    def to_dict(self) -> dict[str, Any]:
        """The event as a plain dict for orjson to write: payload and metadata as their JSON
        text, embedded verbatim (orjson.Fragment), so any JSON the log accepted is written
        whatever its depth."""
        meta = self.metadata_json
        return {
            "seq": self.seq,
            "stream": self.stream,
            "version": self.version,
            "type": self.type,
            "schema_version": self.schema_version,
            "key": self.key,
            "payload": orjson.Fragment(self.payload_json),
            "metadata": None if meta is None else orjson.Fragment(meta),
            "source_time_ns": self.source_time_ns,
            "read_ns": self.read_ns,
            "committed_ns": self.committed_ns,
            "written_ns": self.written_ns,
        }


def event_from_row(row: tuple[Any, ...]) -> Event:
    return Event(*row)


class AppendResult(NamedTuple):
    """Outcome of one event's append. A duplicate carries the sequence of the original.
    (A named tuple: a bulk append makes one per event, and these are the cheapest to make.)"""

    seq: int
    stream: str
    version: int
    duplicate: bool = False


class AppendResults(Sequence[AppendResult]):
    """The outcomes of one append, in the order of its events: a read-only sequence of
    AppendResult, made on access from three columns.

    Not a list of AppendResult because the writer thread would make one tracked object per
    event, and in a bulk run those set off about half of the garbage collector's passes, each
    holding the GIL the writer needs (docs/performance.md#encoding). It compares
    equal to any sequence of the same AppendResults."""

    __slots__ = ("_duplicate", "_seqs", "_streams", "_versions")

    def __init__(
        self,
        seqs: Sequence[int],
        streams: Sequence[str],
        versions: Sequence[int],
        duplicate: Sequence[bool] | None = None,
    ) -> None:
        self._seqs = seqs
        self._streams = streams
        self._versions = versions
        self._duplicate = duplicate  # None: no duplicates

    @classmethod
    def of(cls, results: Sequence[AppendResult]) -> AppendResults:
        """The results of `results`, kept as columns."""
        return cls(
            [r.seq for r in results],
            [r.stream for r in results],
            [r.version for r in results],
            [r.duplicate for r in results] if any(r.duplicate for r in results) else None,
        )

    def __len__(self) -> int:
        return len(self._seqs)

    @overload
    def __getitem__(self, i: int) -> AppendResult: ...
    @overload
    def __getitem__(self, i: slice) -> AppendResults: ...
    def __getitem__(self, i: int | slice) -> AppendResult | AppendResults:
        dup = self._duplicate
        if isinstance(i, slice):
            return AppendResults(
                self._seqs[i], self._streams[i], self._versions[i], None if dup is None else dup[i]
            )
        return AppendResult(
            self._seqs[i], self._streams[i], self._versions[i], False if dup is None else dup[i]
        )

    def __iter__(self) -> Iterator[AppendResult]:
        if self._duplicate is None:
            return map(AppendResult, self._seqs, self._streams, self._versions)
        return map(AppendResult, self._seqs, self._streams, self._versions, self._duplicate)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"AppendResults({list(self)!r})"

    @property
    def duplicates(self) -> int:
        """How many of the events were already in the log (and so not appended again)."""
        return 0 if self._duplicate is None else sum(self._duplicate)

    @property
    def last_seq(self) -> int | None:
        """The highest sequence among the results (an original's, for a duplicate)."""
        return max(self._seqs, default=None)


NO_RESULTS = AppendResults((), (), ())


@dataclass(slots=True, frozen=True)
class DeadLetter:
    """A record a source could not turn into an event: kept so the user can inspect and fix it."""

    source: str
    position: str
    error: str
    raw: bytes | str | None = None
    # The idempotency key the record would have had: a retry that succeeds appends under it.
    key: str | None = None


@dataclass(slots=True, frozen=True)
class SourceCheckpoint:
    """How far a source has been read; stored in the same transaction as the events it produced."""

    source: str
    position: Any


@dataclass(slots=True, frozen=True)
class LogStats:
    """A log's head, counts and file sizes (`evlog status`)."""

    path: str
    head_seq: int
    events: int
    streams: int
    dead_letters: int
    sources: int
    db_bytes: int
    wal_bytes: int
