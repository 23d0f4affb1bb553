"""The event envelope: what producers hand to the log (`NewEvent`) and readers get (`Event`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson


@dataclass(slots=True)
class NewEvent:
    """An event not yet in the log.

    `payload` is any JSON-serialisable value; `bytes` are taken as already-encoded JSON (and the
    same for `metadata`, a dict or encoded JSON bytes).
    `key` is the idempotency key: an event whose key is already in the log is never appended again.
    `read_ns` is the wall-clock time (ns) the adapter read it; it starts the latency clock.
    """

    stream: str
    type: str
    payload: Any
    key: str | None = None
    source_time_ns: int | None = None
    metadata: dict[str, Any] | bytes | None = None
    schema_version: int = 1
    read_ns: int = field(default_factory=time.time_ns)


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

    @property
    def payload(self) -> Any:
        return orjson.loads(self.payload_json)

    @property
    def metadata(self) -> dict[str, Any] | None:
        return None if self.metadata_json is None else orjson.loads(self.metadata_json)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "stream": self.stream,
            "version": self.version,
            "type": self.type,
            "schema_version": self.schema_version,
            "key": self.key,
            "payload": self.payload,
            "metadata": self.metadata,
            "source_time_ns": self.source_time_ns,
            "read_ns": self.read_ns,
            "committed_ns": self.committed_ns,
        }


EVENT_COLUMNS = (
    "seq, stream, version, type, schema_version, key, payload, metadata,"
    " source_time_ns, read_ns, committed_ns"
)


def event_from_row(row: tuple[Any, ...]) -> Event:
    return Event(*row)


class AppendResult(NamedTuple):
    """Outcome of one event's append. A duplicate carries the sequence of the original.
    (A named tuple: a bulk append makes one per event, and these are the cheapest to make.)"""

    seq: int
    stream: str
    version: int
    duplicate: bool = False


@dataclass(slots=True, frozen=True)
class DeadLetter:
    """A record a source could not turn into an event: kept so the user can inspect and fix it."""

    source: str
    position: str
    error: str
    raw: bytes | str | None = None


@dataclass(slots=True, frozen=True)
class SourceCheckpoint:
    """How far a source has been read; stored in the same transaction as the events it produced."""

    source: str
    position: Any
