"""evlog's append-only event log: one SQLite file in WAL mode, group-committed, idempotent."""

from .connection import Durability
from .encoding import EncodedEvents, encode_events, encode_valid
from .envelope import AppendResult, AppendResults, DeadLetter, Event, NewEvent, SourceCheckpoint
from .errors import (
    ConcurrencyError,
    EventLogError,
    InvalidEventError,
    LogClosedError,
    SchemaTooNewError,
)
from .log import EventLog, LogStats

__all__ = [
    "AppendResult",
    "AppendResults",
    "ConcurrencyError",
    "DeadLetter",
    "Durability",
    "EncodedEvents",
    "Event",
    "EventLog",
    "EventLogError",
    "InvalidEventError",
    "LogClosedError",
    "LogStats",
    "NewEvent",
    "SchemaTooNewError",
    "SourceCheckpoint",
    "encode_events",
    "encode_valid",
]
