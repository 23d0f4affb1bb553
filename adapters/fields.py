"""Picking stream, type, key and time out of a record by (dotted) field name, and parsing times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True, frozen=True)
class FieldMap:
    """Which record fields name the event's stream, type, idempotency key and source time.
    Unset fields fall back to the adapter's defaults (file name as stream, adapter name as type,
    a key from the file position and content, no source time)."""

    stream: str | None = None
    stream_field: str | None = None
    type_field: str | None = None
    key_field: str | None = None
    time_field: str | None = None
    event_type: str | None = None


def get_field(record: Any, dotted: str) -> Any:
    """`a.b` looks up record["a"]["b"]; a literal key containing dots wins if present."""
    if not isinstance(record, dict):
        return None
    if dotted in record:
        return record[dotted]
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def parse_time_ns(value: Any) -> int | None:
    """Epoch numbers (s, ms, µs or ns, told apart by size) or ISO 8601 text to ns since epoch.
    Raises ValueError for a value that is there but is not a time."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        return _epoch_ns(float(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            return _epoch_ns(float(text))
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise ValueError(f"not a time: {value!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
    raise ValueError(f"not a time: {value!r}")


def _epoch_ns(x: float) -> int:
    magnitude = abs(x)
    if magnitude >= 1e17:
        return int(x)  # ns
    if magnitude >= 1e14:
        return int(x * 1e3)  # µs
    if magnitude >= 1e11:
        return int(x * 1e6)  # ms
    return int(x * 1e9)  # s
