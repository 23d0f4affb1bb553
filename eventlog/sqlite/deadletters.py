"""How the SQLite log stores dead letters (schema v8): packed several to a row.

The dead letters of one append from one place (the file part of their positions) are a *block*:
one row of `dead_letter_blocks` with the source and the place (ids of `dead_letter_texts`), the
range of line numbers it holds, how many letters and how many still open, when, and the letters
themselves packed column by column and compressed: ids, line numbers, reasons and key prefixes
as integers, then the rest of each key and each raw record as bytes. A letter a retry resolved
is a row of `dead_letter_resolved` (id -> the seq of the event that replaced it), and its
block's open count goes down by one.

The same record failing the same way again (a file read again from its start) is stored once
while open: new letters are compared with the open letters of the blocks of the same source and
place whose line range meets theirs.

Sizes and times: docs/performance.md#dead-letters. Everything here runs on a connection the
caller holds, inside the caller's transaction for writes."""

from __future__ import annotations

import sqlite3
import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..envelope import DeadLetter

BLOCK_MAX = 4096  # letters in one block at most
_LEVEL = 6  # zlib's default: a block of 4,096 short letters packs in a few ms
_NONE = -1  # an absent line, key prefix, key rest or raw record, in the integer columns
_NEXT_ID = "dead_letter_next_id"  # log_meta: ids are never used twice, purged or not

SCHEMA = """
    CREATE TABLE dead_letter_blocks (
        first_id   INTEGER PRIMARY KEY,  -- its first letter's id (the others are greater)
        last_id    INTEGER NOT NULL,
        source     INTEGER NOT NULL,     -- dead_letter_texts
        place      INTEGER NOT NULL,     -- dead_letter_texts: a position up to its last ':'
        line_lo    INTEGER,              -- the line numbers its letters have (NULL: none has)
        line_hi    INTEGER,
        count      INTEGER NOT NULL,
        open       INTEGER NOT NULL,     -- how many no retry resolved
        created_ns INTEGER NOT NULL,
        letters    BLOB NOT NULL         -- `pack`
    );
    CREATE INDEX dead_letter_blocks_by_place ON dead_letter_blocks (source, place, line_lo);
    CREATE TABLE dead_letter_resolved (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL)
"""


@dataclass(slots=True)
class Letter:
    """One dead letter as a block holds it: texts as their ids."""

    id: int
    line: int | None
    error: int
    key_prefix: int | None
    key_rest: bytes | None
    raw: bytes | None


def pack(letters: Sequence[Letter], first_id: int) -> bytes:
    """The letters as one compressed blob (see the module's docstring)."""
    ints = array("q")
    for column in (
        (x.id - first_id for x in letters),
        (_NONE if x.line is None else x.line for x in letters),
        (x.error for x in letters),
        (_NONE if x.key_prefix is None else x.key_prefix for x in letters),
        (_NONE if x.key_rest is None else len(x.key_rest) for x in letters),
        (_NONE if x.raw is None else len(x.raw) for x in letters),
    ):
        ints.extend(column)
    if sys.byteorder != "little":
        ints.byteswap()
    rests = b"".join(x.key_rest or b"" for x in letters)
    raws = b"".join(x.raw or b"" for x in letters)
    head = struct.pack("<I", len(letters))
    return zlib.compress(head + ints.tobytes() + rests + raws, _LEVEL)


def unpack(blob: bytes, first_id: int) -> list[Letter]:
    data = zlib.decompress(blob)
    (n,) = struct.unpack_from("<I", data)
    ints = array("q")
    ints.frombytes(data[4 : 4 + 6 * 8 * n])
    if sys.byteorder != "little":
        ints.byteswap()
    ids, lines, errors, prefixes, rest_lens, raw_lens = (
        ints[i * n : (i + 1) * n] for i in range(6)
    )
    at = 4 + 6 * 8 * n
    rests: list[bytes | None] = []
    for size in rest_lens:
        rests.append(None if size == _NONE else data[at : at + size])
        at += max(size, 0)
    out = []
    for i in range(n):
        size = raw_lens[i]
        raw = None if size == _NONE else data[at : at + size]
        at += max(size, 0)
        out.append(
            Letter(
                first_id + ids[i],
                None if lines[i] == _NONE else lines[i],
                errors[i],
                None if prefixes[i] == _NONE else prefixes[i],
                rests[i],
                raw,
            )
        )
    return out


def split_position(position: str) -> tuple[str, int | None]:
    """("file", line) of a "file:line" position (a line number without leading zeros); the
    position and None otherwise."""
    head, sep, tail = position.rpartition(":")
    if sep and head and tail.isdigit() and len(tail) <= 18 and (tail == "0" or tail[0] != "0"):
        return head, int(tail)
    return position, None


# -- writing (in the writer's transaction) ------------------------------------------------------


def text_ids(conn: sqlite3.Connection) -> Callable[[str], int]:
    """The id of a text in dead_letter_texts, added if new (cached for one transaction: a
    rolled-back one leaves none behind)."""
    ids: dict[str, int] = {}

    def text_id(text: str) -> int:
        found = ids.get(text)
        if found is None:
            conn.execute("INSERT OR IGNORE INTO dead_letter_texts (text) VALUES (?)", (text,))
            row = conn.execute("SELECT id FROM dead_letter_texts WHERE text = ?", (text,))
            found = ids[text] = row.fetchone()[0]
        return found

    return text_id


def insert(conn: sqlite3.Connection, letters: Sequence[DeadLetter], created_ns: int) -> int:
    """Store `letters` (those not already open as the same failure of the same record) in
    blocks; returns how many were stored."""
    text_id = text_ids(conn)
    groups: dict[tuple[int, int], list[Letter]] = {}
    for d in letters:
        where, line = split_position(d.position)
        prefix, sep, rest = (d.key or "").partition(":")
        raw = d.raw.encode() if isinstance(d.raw, str) else d.raw
        letter = Letter(
            0,
            line,
            text_id(d.error),
            text_id(prefix) if d.key is not None else None,
            (sep + rest).encode() if d.key is not None else None,
            raw,
        )
        groups.setdefault((text_id(d.source), text_id(where)), []).append(letter)
    stored = 0
    for (source, place), group in groups.items():
        fresh = _not_open_already(conn, source, place, group)
        for i in range(0, len(fresh), BLOCK_MAX):
            chunk = fresh[i : i + BLOCK_MAX]
            first = _take_ids(conn, len(chunk))
            for n, letter in enumerate(chunk):
                letter.id = first + n
            _store_block(conn, chunk, source, place, created_ns)
            stored += len(chunk)
    return stored


def _store_block(
    conn: sqlite3.Connection,
    held: Sequence[Letter],
    source: int,
    place: int,
    created_ns: int,
    still_open: int | None = None,
) -> None:
    """One block of `held` (ids set, ascending), all open unless `still_open` says how many."""
    lines = [x.line for x in held if x.line is not None]
    first = held[0].id
    conn.execute(
        "INSERT INTO dead_letter_blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (first, held[-1].id, source, place, min(lines, default=None), max(lines, default=None),
         len(held), len(held) if still_open is None else still_open, created_ns,
         pack(held, first)),
    )  # fmt: skip


def _not_open_already(
    conn: sqlite3.Connection, source: int, place: int, group: list[Letter]
) -> list[Letter]:
    lines = [x.line for x in group if x.line is not None]
    sql = "SELECT first_id, letters FROM dead_letter_blocks WHERE source = ? AND place = ?"
    sql += " AND open > 0"
    params: list[Any] = [source, place]
    if len(lines) == len(group):  # every letter has a line: only blocks whose lines meet
        sql += " AND line_lo <= ? AND line_hi >= ?"
        params += [max(lines), min(lines)]
    seen: set[tuple[int | None, int, bytes | None]] = set()
    for first_id, blob in conn.execute(sql, params).fetchall():
        held = unpack(blob, first_id)
        done = resolved_among(conn, held[0].id, held[-1].id)
        seen.update((x.line, x.error, x.raw) for x in held if x.id not in done)
    fresh = []
    for letter in group:
        same = (letter.line, letter.error, letter.raw)
        if same not in seen:
            seen.add(same)
            fresh.append(letter)
    return fresh


def _take_ids(conn: sqlite3.Connection, n: int) -> int:
    row = conn.execute("SELECT value FROM log_meta WHERE key = ?", (_NEXT_ID,)).fetchone()
    first = int(row[0]) if row else 1
    conn.execute("INSERT OR REPLACE INTO log_meta VALUES (?, ?)", (_NEXT_ID, str(first + n)))
    return first


def resolve(conn: sqlite3.Connection, pairs: Iterable[tuple[int, int]]) -> None:
    """Mark letters resolved, each (id, seq of the event that replaced it); a letter already
    resolved, or gone, stays as it is."""
    blocks: dict[int, set[int]] = {}
    for id_, seq in pairs:
        row = conn.execute(
            "SELECT first_id, letters FROM dead_letter_blocks WHERE first_id <= ?"
            " ORDER BY first_id DESC LIMIT 1",
            (id_,),
        ).fetchone()
        if row is None:
            continue
        first_id, blob = row
        if first_id not in blocks:
            blocks[first_id] = {x.id for x in unpack(blob, first_id)}
        if id_ not in blocks[first_id]:
            continue
        if conn.execute(
            "INSERT OR IGNORE INTO dead_letter_resolved VALUES (?, ?)", (id_, seq)
        ).rowcount:
            conn.execute(
                "UPDATE dead_letter_blocks SET open = open - 1 WHERE first_id = ?", (first_id,)
            )


# -- reading -------------------------------------------------------------------------------------


def resolved_among(conn: sqlite3.Connection, lo: int, hi: int) -> dict[int, int]:
    """id -> seq of the resolved letters with ids in [lo, hi]."""
    rows = conn.execute(
        "SELECT id, seq FROM dead_letter_resolved WHERE id BETWEEN ? AND ?", (lo, hi)
    ).fetchall()
    return dict(rows)


def _texts(conn: sqlite3.Connection, ids: set[int], cache: dict[int, str]) -> None:
    wanted = [i for i in ids if i not in cache]
    for i in range(0, len(wanted), 500):
        part = wanted[i : i + 500]
        marks = ",".join("?" * len(part))
        sql = f"SELECT id, text FROM dead_letter_texts WHERE id IN ({marks})"
        cache.update(conn.execute(sql, part).fetchall())


def _blocks_where(
    source: str | None, older_than_ns: int | None, resolved: bool | None
) -> tuple[str, list[Any]]:
    """The WHERE clause (and its parameters) picking blocks of `source`, created before
    `older_than_ns`, holding open letters (`resolved` False) or resolved ones (True)."""
    where: list[str] = ["1"]
    params: list[Any] = []
    if source is not None:
        where.append("source = (SELECT id FROM dead_letter_texts WHERE text = ?)")
        params.append(source)
    if older_than_ns is not None:
        where.append("created_ns < ?")
        params.append(older_than_ns)
    if resolved is False:
        where.append("open > 0")
    elif resolved is True:
        where.append("open < count")
    return " AND ".join(where), params


def letters(
    conn: sqlite3.Connection,
    *,
    source: str | None = None,
    resolved: bool | None = False,
    after: int | None = None,
    newest_first: bool = False,
    older_than_ns: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The dead letters, as dicts (raw as bytes), by id (the newest first if asked), one block
    unpacked at a time: of `source`, open (`resolved` False), resolved (True) or both (None),
    with ids greater than `after`, created before `older_than_ns`."""
    where, params = _blocks_where(source, older_than_ns, resolved)
    if after is not None:
        where += " AND last_id > ?"
        params.append(after)
    order = "DESC" if newest_first else "ASC"
    sql = (
        "SELECT first_id, last_id, source, place, created_ns, letters FROM dead_letter_blocks"
        f" WHERE {where} ORDER BY first_id {order}"
    )
    texts: dict[int, str] = {}
    for first_id, last_id, src, place, created_ns, blob in conn.execute(sql, params):
        held = unpack(blob, first_id)
        done = resolved_among(conn, first_id, last_id)
        _texts(conn, {src, place, *(x.error for x in held)}
               | {x.key_prefix for x in held if x.key_prefix is not None}, texts)  # fmt: skip
        for x in reversed(held) if newest_first else held:
            seq = done.get(x.id)
            if (resolved is False and seq is not None) or (resolved is True and seq is None):
                continue
            if after is not None and x.id <= after:
                continue
            where_ = texts[place] if x.line is None else f"{texts[place]}:{x.line}"
            key = None
            if x.key_prefix is not None:
                key = texts[x.key_prefix] + (x.key_rest or b"").decode()
            yield {
                "id": x.id,
                "source": texts[src],
                "position": where_,
                "error": texts[x.error],
                "raw": x.raw,
                "created_ns": created_ns,
                "key": key,
                "resolved_seq": seq,
            }


def counts(conn: sqlite3.Connection) -> tuple[int, int]:
    """(dead letters, open ones)."""
    row = conn.execute(
        "SELECT coalesce(sum(count), 0), coalesce(sum(open), 0) FROM dead_letter_blocks"
    ).fetchone()
    return int(row[0]), int(row[1])


# -- purging (in a transaction of the caller's) --------------------------------------------------


def purge(
    conn: sqlite3.Connection,
    *,
    source: str | None = None,
    older_than_ns: int | None = None,
    resolved_only: bool = False,
) -> int:
    """Delete the letters asked for; returns how many. A block left with some letters is
    packed again with those."""
    where, params = _blocks_where(source, older_than_ns, True if resolved_only else None)
    sql = (
        "SELECT first_id, last_id, source, place, created_ns, open, count, letters"
        f" FROM dead_letter_blocks WHERE {where}"
    )
    deleted = 0
    for first_id, last_id, src, place, created_ns, open_, count, blob in conn.execute(
        sql, params
    ).fetchall():
        conn.execute("DELETE FROM dead_letter_blocks WHERE first_id = ?", (first_id,))
        done = resolved_among(conn, first_id, last_id)
        conn.execute(
            "DELETE FROM dead_letter_resolved WHERE id BETWEEN ? AND ?", (first_id, last_id)
        )
        if not resolved_only or open_ == 0:
            deleted += count
            continue
        kept = [x for x in unpack(blob, first_id) if x.id not in done]
        deleted += count - len(kept)
        _store_block(conn, kept, src, place, created_ns)
    return deleted


# -- schema v8 ------------------------------------------------------------------------------------


def migrate_v8(conn: sqlite3.Connection) -> None:
    """Schema v7's letters (one row each, dead_letter_rows) into blocks, keeping their ids."""
    for statement in SCHEMA.split(";"):
        conn.execute(statement)
    rows = conn.execute(
        "SELECT id, source, place, line, error, raw, created_ns, key_prefix, key_rest,"
        " resolved_seq FROM dead_letter_rows ORDER BY id"
    ).fetchall()
    run: list[tuple[Any, ...]] = []

    def flush() -> None:
        if not run:
            return
        held = [
            Letter(r[0], r[3], r[4], r[7], None if r[8] is None else r[8].encode(),
                   r[5].encode() if isinstance(r[5], str) else r[5])
            for r in run
        ]  # fmt: skip
        still_open = sum(1 for r in run if r[9] is None)
        _store_block(conn, held, run[0][1], run[0][2], run[0][6], still_open)
        conn.executemany(
            "INSERT INTO dead_letter_resolved VALUES (?, ?)",
            [(r[0], r[9]) for r in run if r[9] is not None],
        )
        run.clear()

    for row in rows:
        if run and (row[1], row[2], row[6]) != (run[0][1], run[0][2], run[0][6]):
            flush()
        run.append(row)
        if len(run) == BLOCK_MAX:
            flush()
    flush()
    top = conn.execute(
        "SELECT max(seq) FROM sqlite_sequence WHERE name = 'dead_letter_rows'"
    ).fetchone()
    next_id = max(int(top[0] or 0) if top else 0, rows[-1][0] if rows else 0) + 1
    conn.execute("INSERT OR REPLACE INTO log_meta VALUES (?, ?)", (_NEXT_ID, str(next_id)))
    conn.execute("DROP VIEW dead_letters")
    conn.execute("DROP TABLE dead_letter_rows")
