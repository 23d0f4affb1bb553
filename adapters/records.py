"""A JSON record to an event, as `--stream-field`, `--type-field`, `--key-field`, `--time-field`,
`--type` and the message fields say: the one mapping a JSONL file's lines and records pushed to
`evlog serve` both go through."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from evlog.eventlog import NewEvent

from .fields import FieldMap, get_field, lacks_message_fields, parse_time_ns, scalar_text


class RecordMapper:
    """Turns records into events: the fields' accessors are made once (a plain dict lookup
    unless a name has dots), as a file of a million lines calls this a million times."""

    def __init__(self, fields: FieldMap, default_stream: str, default_type: str = "record") -> None:
        self.fields = fields
        self.default_stream = default_stream
        self.default_type = fields.event_type or default_type
        self._stream, self._type = _getter(fields.stream_field), _getter(fields.type_field)
        self._key, self._time = _getter(fields.key_field), _getter(fields.time_field)

    def event(
        self,
        record: Any,
        raw: bytes,
        fallback_key: str | None,
        metadata: bytes | dict[str, Any] | None,
        read_ns: int,
        *,
        check_unnamed: bool = True,
    ) -> tuple[NewEvent, bool]:
        """(the event `record` is, whether it is a message without author or text: looked at
        only if `check_unnamed`, as a caller that said so once need not know again). `raw`:
        the record's JSON as read (stored as is unless message fields re-make it);
        `fallback_key`: its key when no --key-field names one. Raises ValueError for a field
        that is not what it must be (a stream that is an object, a time that is not one)."""
        stream = scalar_text(self._stream(record)) if self._stream else None
        event_type = scalar_text(self._type(record)) if self._type else None
        custom_key = scalar_text(self._key(record)) if self._key else None
        source_time = (
            parse_time_ns(self._time(record), self.fields.time_format) if self._time else None
        )
        stream = stream or self.default_stream
        kind = event_type or self.default_type
        payload = raw
        unnamed = False
        if kind == "message":
            if self.fields.maps_message:
                record = self.fields.with_message_fields(record)
                payload = orjson.dumps(record)
            unnamed = check_unnamed and lacks_message_fields(record)
        key = f"{stream}:{custom_key}" if custom_key else fallback_key
        # Positional: the bulk path makes a million of these (docs/performance.md#ingest).
        return NewEvent(stream, kind, payload, key, source_time, metadata, 1, read_ns), unnamed


def _getter(dotted: str | None) -> Callable[[Any], Any] | None:
    """A field accessor: a plain dict lookup unless the name has dots."""
    if dotted is None:
        return None
    if "." not in dotted:
        return lambda record: record.get(dotted) if type(record) is dict else None
    return lambda record: get_field(record, dotted)
