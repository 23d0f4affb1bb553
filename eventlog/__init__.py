"""evlog's append-only event log, behind one interface (store.py `LogStore`): one SQLite file
in WAL mode (sqlite/), or a NATS JetStream stream past one machine (jetstream/); both
group-committed and idempotent. `EventLog` is the SQLite one."""

from .encoding import EncodedEvents, encode_events, encode_valid
from .envelope import (
    AppendResult,
    AppendResults,
    DeadLetter,
    Event,
    LogStats,
    NewEvent,
    SourceCheckpoint,
)
from .errors import (
    ConcurrencyError,
    EventLogError,
    InvalidEventError,
    LogClosedError,
    SchemaTooNewError,
)
from .sqlite.connection import Durability
from .sqlite.log import EventLog

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
