"""Versioned schema of the log file: each migration runs once, tracked by `PRAGMA user_version`."""

from __future__ import annotations

import sqlite3

from .errors import SchemaTooNewError

# Append-only: never edit a released migration; add a new one at the end.
MIGRATIONS: tuple[str, ...] = (
    # 1: the log, source checkpoints, dead letters.
    """
    CREATE TABLE events (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: never reused
        stream         TEXT    NOT NULL,
        version        INTEGER NOT NULL,
        type           TEXT    NOT NULL,
        schema_version INTEGER NOT NULL DEFAULT 1,
        key            TEXT    UNIQUE,
        payload        TEXT    NOT NULL,
        metadata       TEXT,
        source_time_ns INTEGER,
        read_ns        INTEGER NOT NULL,
        committed_ns   INTEGER NOT NULL,
        UNIQUE (stream, version)
    );
    CREATE TABLE source_checkpoints (
        source     TEXT PRIMARY KEY,
        position   TEXT NOT NULL,
        last_seq   INTEGER,
        updated_ns INTEGER NOT NULL
    );
    CREATE TABLE dead_letters (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        source     TEXT    NOT NULL,
        position   TEXT    NOT NULL,
        error      TEXT    NOT NULL,
        raw        BLOB,
        created_ns INTEGER NOT NULL
    );
    CREATE INDEX dead_letters_by_source ON dead_letters (source, id);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the file up to SCHEMA_VERSION; safe to call from several processes at once."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"log schema version {current} is newer than this evlog ({SCHEMA_VERSION})"
            )
        for version in range(current, SCHEMA_VERSION):
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT our transaction; split on ';' instead (no ';' in our DDL bodies).
    return [s.strip() for s in script.split(";") if s.strip() and not _only_comments(s)]


def _only_comments(s: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in s.splitlines())
