"""evlog's append-only event log, behind one interface (store.py `LogStore`): one SQLite file
in WAL mode (sqlite/), or a NATS JetStream stream past one machine (jetstream/); both
group-committed and idempotent. `EventLog` is the SQLite one.

The backend and the encoder are loaded on first use (PEP 562)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evlog.system.lazy import lazy_names

from .errors import (
    ConcurrencyError,
    EventLogError,
    InvalidEventError,
    LogClosedError,
    SchemaTooNewError,
)

if TYPE_CHECKING:
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
    from .sqlite.log import EventLog
    from .target import Durability

# Loaded on first use (PEP 562): a command that opens no log (a query, --help) does not import
# the SQLite backend and its threads, nor asyncio with them.
_WHERE = {
    "AppendResult": ".envelope",
    "AppendResults": ".envelope",
    "DeadLetter": ".envelope",
    "Event": ".envelope",
    "LogStats": ".envelope",
    "NewEvent": ".envelope",
    "SourceCheckpoint": ".envelope",
    "EncodedEvents": ".encoding",
    "encode_events": ".encoding",
    "encode_valid": ".encoding",
    "Durability": ".target",
    "EventLog": ".sqlite.log",
}

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


__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
