"""The event row, defined once: each column's name, SQLite type and Arrow type (by name, so the
log needs no pyarrow), in the order readers get them. The read order, the writer's insert order
and the index constants are derived from it, for the log and the projector alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    sqlite: str  # as declared in the schema (eventlog/sqlite/schema.py; released migrations stay)
    arrow: str  # a pyarrow type name: int64, int32, string, timestamp[ns]


EVENT_ROW: tuple[Column, ...] = (
    Column("seq", "INTEGER", "int64"),
    Column("stream", "TEXT", "string"),
    Column("version", "INTEGER", "int64"),
    Column("type", "TEXT", "string"),
    Column("schema_version", "INTEGER", "int32"),
    Column("key", "TEXT", "string"),
    Column("payload", "TEXT", "string"),  # JSON text
    Column("metadata", "TEXT", "string"),  # JSON text or NULL
    Column("source_time_ns", "INTEGER", "timestamp[ns]"),
    Column("read_ns", "INTEGER", "int64"),
    Column("committed_ns", "INTEGER", "int64"),
    # When the source says the record was written, if it can (`evlog watch`: the earliest word
    # of a write not yet read); NULL otherwise. Added by migration 6, hence last.
    Column("written_ns", "INTEGER", "int64"),
)
READ_ORDER: tuple[str, ...] = tuple(c.name for c in EVENT_ROW)
EVENT_COLUMNS = ", ".join(READ_ORDER)  # for SELECT: rows come in READ_ORDER
# Indexes into a row as read (EventLog.read_rows, the projector's batches).
(SEQ, STREAM, VERSION, TYPE, SCHEMA_VERSION, KEY, PAYLOAD, METADATA, SOURCE_TIME, READ, COMMITTED,
 WRITTEN) = range(len(EVENT_ROW))  # fmt: skip
# The writer inserts with seq last (it is the last value it knows).
INSERT_ORDER: tuple[str, ...] = (*READ_ORDER[1:], READ_ORDER[0])
