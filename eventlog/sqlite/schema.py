"""Versioned schema of the log file: each migration runs once, tracked by `PRAGMA user_version`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ..errors import SchemaTooNewError
from .deadletters import migrate_v8

# Append-only: never edit a released migration; add a new one at the end.
MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
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
    # 2: stream heads move to a small `streams` table, written once per stream per commit, in
    # place of the UNIQUE (stream, version) index (one index page per stream per commit) and
    # AUTOINCREMENT's sqlite_sequence page. The row keyed '' holds the log's own head: `version`
    # is the last sequence ever handed out, so a sequence is never reused even if rows are
    # deleted. About half the WAL frames per commit (docs/performance.md#schema-v2).
    # A v1 file is copied into the new table once, in this migration's transaction.
    """
    ALTER TABLE events RENAME TO events_v1;
    CREATE TABLE events (
        seq            INTEGER PRIMARY KEY,  -- handed out by the writer from streams['']
        stream         TEXT    NOT NULL,
        version        INTEGER NOT NULL,
        type           TEXT    NOT NULL,
        schema_version INTEGER NOT NULL DEFAULT 1,
        key            TEXT    UNIQUE,
        payload        TEXT    NOT NULL,
        metadata       TEXT,
        source_time_ns INTEGER,
        read_ns        INTEGER NOT NULL,
        committed_ns   INTEGER NOT NULL
    );
    INSERT INTO events SELECT seq, stream, version, type, schema_version, key, payload,
        metadata, source_time_ns, read_ns, committed_ns FROM events_v1 ORDER BY seq;
    CREATE TABLE streams (
        stream   TEXT    PRIMARY KEY,  -- '' is the log itself
        version  INTEGER NOT NULL,     -- the stream's last version (for '': the last seq)
        last_seq INTEGER NOT NULL      -- the sequence of the stream's last event
    ) WITHOUT ROWID;
    INSERT INTO streams SELECT stream, max(version), max(seq) FROM events
        WHERE stream <> '' GROUP BY stream;
    INSERT INTO streams SELECT '', head, head FROM (SELECT max(
        coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events_v1'), 0),
        coalesce((SELECT max(seq) FROM events), 0)) AS head);
    DROP TABLE events_v1
    """,
    # 3: a dead letter keeps the key its record would have had, and the sequence of the event
    # that replaced it once a retry (`evlog deadletters retry`) read it with a fixed mapping.
    """
    ALTER TABLE dead_letters ADD COLUMN key TEXT;
    ALTER TABLE dead_letters ADD COLUMN resolved_seq INTEGER
    """,
    # 4: the same record failing the same way again is stored once (the writer checks through
    # this index); repeats stored before are folded into the first.
    """
    DELETE FROM dead_letters WHERE resolved_seq IS NULL AND id NOT IN (
        SELECT min(id) FROM dead_letters WHERE resolved_seq IS NULL
        GROUP BY source, position, error, raw);
    CREATE INDEX dead_letters_by_position ON dead_letters (source, position)
    """,
    # 5: the log's identity, random, made once: an analytics file records the log it was
    # projected from, and refuses to follow another (projector/runner.py).
    """
    CREATE TABLE log_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO log_meta VALUES ('id', lower(hex(randomblob(16))))
    """,
    # 6: when the source says a record was written (`evlog watch`), so latency can start where
    # the user's clock starts (docs/latency.md). NULL for earlier events and other sources.
    """
    ALTER TABLE events ADD COLUMN written_ns INTEGER
    """,
    # 7: dead letters stored compactly: the texts every letter of a source repeats (the
    # source, the file part of the position, the reason, the key's prefix) once each in
    # dead_letter_texts, a letter holding their ids, its line number and its raw record. The
    # view `dead_letters` shows them as before (readers are unchanged); writes go to
    # dead_letter_rows (eventlog/sqlite/writer.py). Sizes: docs/performance.md#dead-letters.
    """
    CREATE TABLE dead_letter_texts (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
    CREATE TABLE dead_letter_rows (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        source       INTEGER NOT NULL,  -- dead_letter_texts: the source
        place        INTEGER NOT NULL,  -- the position up to its last ':' (the whole if no line)
        line         INTEGER,           -- the number after it, if it is one
        error        INTEGER NOT NULL,  -- the reason
        raw          BLOB,
        created_ns   INTEGER NOT NULL,
        key_prefix   INTEGER,           -- the key up to its first ':' (NULL: no key)
        key_rest     TEXT,              -- and from there on
        resolved_seq INTEGER
    );
    CREATE TEMP TABLE old_letters AS SELECT *,
        rtrim(position, '0123456789') AS head,
        CASE WHEN instr(key, ':') > 0 THEN instr(key, ':') ELSE length(key) + 1 END AS cut
        FROM dead_letters;
    ALTER TABLE old_letters ADD COLUMN has_line INTEGER;
    UPDATE old_letters SET has_line = (head LIKE '%_:' AND length(head) < length(position)
        AND length(position) - length(head) <= 18
        AND (substr(position, length(head) + 1, 1) <> '0' OR length(head) + 1 = length(position)));
    INSERT OR IGNORE INTO dead_letter_texts (text)
        SELECT source FROM old_letters UNION SELECT error FROM old_letters
        UNION SELECT CASE WHEN has_line THEN substr(head, 1, length(head) - 1) ELSE position END
            FROM old_letters
        UNION SELECT substr(key, 1, cut - 1) FROM old_letters WHERE key IS NOT NULL;
    INSERT INTO dead_letter_rows
        SELECT o.id, s.id, p.id,
            CASE WHEN o.has_line THEN CAST(substr(o.position, length(o.head) + 1) AS INTEGER) END,
            e.id, o.raw, o.created_ns, k.id,
            CASE WHEN o.key IS NOT NULL THEN substr(o.key, o.cut) END, o.resolved_seq
        FROM old_letters o
        JOIN dead_letter_texts s ON s.text = o.source
        JOIN dead_letter_texts e ON e.text = o.error
        JOIN dead_letter_texts p ON p.text = CASE
            WHEN o.has_line THEN substr(o.head, 1, length(o.head) - 1) ELSE o.position END
        LEFT JOIN dead_letter_texts k ON k.text = substr(o.key, 1, o.cut - 1)
        ORDER BY o.id;
    DROP TABLE old_letters;
    DROP TABLE dead_letters;
    CREATE INDEX dead_letter_rows_by_place ON dead_letter_rows (source, place, line);
    CREATE VIEW dead_letters AS SELECT d.id AS id, s.text AS source,
        CASE WHEN d.line IS NULL THEN p.text ELSE p.text || ':' || d.line END AS position,
        e.text AS error, d.raw AS raw, d.created_ns AS created_ns,
        CASE WHEN d.key_prefix IS NULL THEN NULL ELSE k.text || d.key_rest END AS key,
        d.resolved_seq AS resolved_seq
        FROM dead_letter_rows d
        JOIN dead_letter_texts s ON s.id = d.source
        JOIN dead_letter_texts p ON p.id = d.place
        JOIN dead_letter_texts e ON e.id = d.error
        LEFT JOIN dead_letter_texts k ON k.id = d.key_prefix
    """,
    # 8: dead letters packed several to a row, compressed (evlog/eventlog/sqlite/deadletters.py): 1M
    # bad lines took 5.3x their size as one row each. The dead_letters view goes: letters are
    # read through the log's API.
    migrate_v8,
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
            step = MIGRATIONS[version]
            if callable(step):
                step(conn)
            else:
                for statement in _statements(step):
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
