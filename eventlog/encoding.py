"""Events turned into the writer's insert parameters, at the caller: one flat list per append.

One list for a whole append, not one per event, because the garbage collector tracks every
list: a 5,000-event append_many kept 5,000 of them alive until its commit, and each collection
walked them again (docs/performance.md#encoding).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .columns import INSERT_ORDER
from .envelope import NewEvent
from .errors import InvalidEventError

# The parameters of one event, in the writer's INSERT column order (eventlog/columns.py).
COLUMNS = INSERT_ORDER
ROW_WIDTH = len(COLUMNS)
STREAM, VERSION, KEY, READ_NS, COMMITTED_NS, WRITTEN_NS, SEQ = (
    COLUMNS.index(c)
    for c in ("stream", "version", "key", "read_ns", "committed_ns", "written_ns", "seq")
)


@dataclass(slots=True)
class EncodedEvents:
    """`params` holds ROW_WIDTH values per event; version, committed_ns and seq are zeros until
    the writer fills them in at commit. Picklable, so another process can do the encoding."""

    params: list[Any]

    def __len__(self) -> int:
        return len(self.params) // ROW_WIDTH

    def row(self, i: int) -> list[Any]:
        """A copy of event i's parameters."""
        return self.params[i * ROW_WIDTH : (i + 1) * ROW_WIDTH]

    def first_read_ns(self) -> int | None:
        """The read stamp of the first event (None: no events)."""
        return self.params[READ_NS] if self.params else None

    def stamp_written(self, written_ns: int) -> None:
        """Give every event this written stamp (when its source says it was written)."""
        self.params[WRITTEN_NS::ROW_WIDTH] = [written_ns] * len(self)

    def rows(self) -> Iterator[list[Any]]:
        """Each event's parameters, in order (copies)."""
        for i in range(len(self)):
            yield self.row(i)


# How deep JSON may nest in a payload or metadata: what orjson, which writes every output of the
# log (`evlog query --json`, `tail --json`, the socket, the page), can write. The log refuses
# deeper JSON (the adapter's record becomes a dead letter saying so) rather than accept what it
# could never give back.
MAX_DEPTH = 254
TOO_DEEP = f"JSON nested deeper than {MAX_DEPTH} levels (more than evlog's outputs can write)"

# Event times are int64 ns (SQLite INTEGER); anything else would fail the whole commit.
MIN_NS, MAX_NS = -(2**63), 2**63 - 1


def encode_events(events: Sequence[NewEvent]) -> EncodedEvents:
    """Serialise events into insert parameters. Raises InvalidEventError (with the event's
    index) at the caller for an event the writer could not store, so one bad event can never
    fail a group commit that carries other callers' events."""
    dumps = orjson.dumps
    params: list[Any] = []
    extend = params.extend
    i = 0
    try:
        for i, ev in enumerate(events):  # noqa: B007 - i names the bad event in the error
            payload, metadata, source_time, stream, written = (
                ev.payload, ev.metadata, ev.source_time_ns, ev.stream, ev.written_ns
            )  # fmt: skip
            if type(stream) is not str or not stream:
                raise ValueError("an event's stream name must be a non-empty string")
            if source_time is not None and not (
                type(source_time) is int and MIN_NS <= source_time <= MAX_NS
            ):
                raise ValueError(f"source time {source_time!r} is not an int64 of ns")
            if written is not None and not (type(written) is int and MIN_NS <= written <= MAX_NS):
                raise ValueError(f"written time {written!r} is not an int64 of ns")
            # version, committed_ns and seq (the zeros) are filled in by the writer at commit
            extend((
                stream, 0, ev.type, ev.schema_version, ev.key,
                dumps(payload).decode() if type(payload) is dict else _json_text(payload),
                None if metadata is None else _json_text(metadata),
                source_time, ev.read_ns, 0, written, 0,
            ))  # fmt: skip
    except (ValueError, TypeError, UnicodeError) as exc:  # orjson's errors are TypeErrors
        reason = TOO_DEEP if "recursion limit" in str(exc).lower() else str(exc)
        raise InvalidEventError(i, reason) from exc
    return EncodedEvents(params)


def encode_valid(events: Sequence[NewEvent]) -> tuple[EncodedEvents, list[tuple[int, str]]]:
    """Encode the events that can be stored; the others come back as (index, reason)."""
    try:
        return encode_events(events), []
    except InvalidEventError:
        pass
    params: list[Any] = []
    rejected = []
    for i, ev in enumerate(events):
        try:
            params += encode_events((ev,)).params
        except InvalidEventError as exc:
            rejected.append((i, exc.reason))
    return EncodedEvents(params), rejected


def _json_text(value: Any) -> str:
    """JSON text of a value; bytes-like values are taken as JSON already (and checked for
    depth: see MAX_DEPTH)."""
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if too_deep(data):
            raise ValueError(TOO_DEEP)
        return data.decode()
    return orjson.dumps(value).decode()


def too_deep(data: bytes) -> bool:
    """Whether JSON text nests deeper than MAX_DEPTH. Cheap for nearly every record: nesting
    that deep takes 2 * MAX_DEPTH bytes and as many brackets; only then is it parsed and
    written again, as an output would."""
    if len(data) <= 2 * MAX_DEPTH or data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return False
    try:
        orjson.dumps(orjson.loads(data))
    except orjson.JSONEncodeError:
        return True
    except orjson.JSONDecodeError:
        return False  # not JSON: not this check's to refuse
    return False
