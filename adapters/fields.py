"""Picking stream, type, key and time out of a record by (dotted) field name, and parsing times."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .base import InputError


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
    time_format: str | None = None  # how the time field is written (see parse_time_ns)
    # Record fields copied into the payload as `author` and `text`, the names the chat
    # analytics (the messages projection) read.
    author_field: str | None = None
    text_field: str | None = None
    encoding: str | None = None  # the file's text encoding (None: UTF-8)

    @property
    def maps_message(self) -> bool:
        """Whether an author or a text field is named (message records are then re-made)."""
        return self.author_field is not None or self.text_field is not None

    def with_message_fields(self, record: Any) -> Any:
        """`record` with `author` and `text` taken from the mapped fields (a record that is not
        an object stays as it is)."""
        if not isinstance(record, dict):
            return record
        out = dict(record)
        for name, dotted in (("author", self.author_field), ("text", self.text_field)):
            if dotted is not None:
                value = get_field(record, dotted)
                if value is not None:
                    out[name] = value if isinstance(value, str) else str(value)
        return out

    # How default stream names are made: 2 (now) `<adapter>/<name>` for every adapter; 1 for
    # sources first read by evlog before that (`chat`, `slack:x`, `whatsapp:x`, `git/x`), kept
    # so a source's events never move to another stream mid-way.
    naming: int = 2

    def default_stream(self, kind: str, name: str) -> str:
        """The stream of a record that names none: --stream, else `<kind>/<name>`."""
        if self.stream:
            return self.stream
        if self.naming >= 2 or kind == "git":
            return f"{kind}/{name}"
        return f"{kind}:{name}" if kind in ("slack", "whatsapp") else name


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


def time_zone(name: str | None) -> ZoneInfo | None:
    """The zone times without one are read in (`--tz`); None: stored as if UTC."""
    if name is None or name.upper() == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"--tz {name!r}: not a known time zone (e.g. Europe/Berlin, America/Sao_Paulo)"
        ) from None


# Times are kept as int64 ns since the epoch (SQLite INTEGER, DuckDB TIMESTAMP_NS).
MIN_NS, MAX_NS = -(2**63), 2**63 - 1
TIME_RANGE = "1677-09-21 to 2262-04-11"


# `--time-format` names for epoch numbers of a fixed unit (beside strptime directives).
EPOCH_UNITS = {"epoch": 10**9, "epoch_ms": 10**6, "epoch_us": 10**3, "epoch_ns": 1}


def check_time_format(fmt: str | None) -> None:
    """ValueError if `fmt` is neither an epoch unit nor a strptime format with a directive."""
    if fmt is None or fmt in EPOCH_UNITS:
        return
    if "%" not in fmt:
        units = ", ".join(EPOCH_UNITS)
        example = "%d/%b/%Y:%H:%M:%S %z"
        raise ValueError(f"--time-format {fmt!r}: strptime directives ({example}) or {units}")


def parse_time_ns(value: Any, fmt: str | None = None) -> int | None:
    """Epoch numbers (s, ms, µs or ns, told apart by size) or ISO 8601 text to ns since epoch;
    with `fmt`, as it says: an epoch unit (EPOCH_UNITS) or strptime directives (a time without
    a zone is UTC). Raises ValueError for a value that is there but is not a time evlog can
    keep."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if fmt is not None:
        return _formatted_ns(value, fmt)
    if isinstance(value, int):
        return _in_range(_epoch_int_ns(value), value)
    if isinstance(value, float):
        return _in_range(_epoch_ns(value), value)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return _in_range(_epoch_ns(number), value)
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise ValueError(f"not a time: {value!r}") from None
        return _in_range(_ns_of(dt), value)
    raise ValueError(f"not a time: {value!r}")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _formatted_ns(value: Any, fmt: str) -> int:
    if fmt in EPOCH_UNITS:
        try:  # exactly, digit by digit: a float would round ns away
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"not a time ({fmt}): {value!r}") from None
        if not number.is_finite():
            raise ValueError(f"not a time ({fmt}): {value!r}")
        return _in_range(int(number * EPOCH_UNITS[fmt]), value)
    try:
        dt = datetime.strptime(str(value).strip(), fmt)
    except ValueError:
        raise ValueError(f"not a time as {fmt!r}: {value!r}") from None
    return _in_range(_ns_of(dt), value)


def _ns_of(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _in_range(ns: int, value: Any) -> int:
    if not MIN_NS <= ns <= MAX_NS:
        raise ValueError(f"time out of range: {value!r} (evlog keeps times from {TIME_RANGE})")
    return ns


def _epoch_int_ns(x: int) -> int:
    """An integer epoch in s, ms, µs or ns (told apart by size, as `_epoch_ns`), exactly."""
    magnitude = abs(x)
    for bound, scale in ((10**17, 1), (10**14, 10**3), (10**11, 10**6)):
        if magnitude >= bound:
            return x * scale
    return x * 10**9


def _epoch_ns(x: float) -> int:
    if not math.isfinite(x):
        raise ValueError(f"not a time: {x!r}")
    magnitude = abs(x)
    if magnitude >= 1e17:
        return int(x)  # ns
    if magnitude >= 1e14:
        return int(x * 1e3)  # µs
    if magnitude >= 1e11:
        return int(x * 1e6)  # ms
    return int(x * 1e9)  # s


def scalar_text(value: Any) -> str | None:
    """A field used as a stream, type or key: text, or a scalar as its text."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, dict | list):
        raise ValueError(f"expected a scalar field, got {type(value).__name__}")
    return str(value)


MESSAGE_FIELDS_HINT = (
    "message records without an author or a text (the chat tables show them empty): name the"
    " fields with --author-field and --text-field"
)


def lacks_message_fields(record: Any) -> bool:
    """A `message` record the messages projection would show with neither author nor text."""
    return not isinstance(record, dict) or (
        record.get("author") in (None, "") and record.get("text") in (None, "")
    )
