"""JSON files as they are exported (`.json`): an array of records, read one element at a time,
or records one after another (pretty-printed objects, or JSON lines), each one event. Streamed:
memory holds one record (at most MAX_RECORD_BYTES) and a chunk, however large the file.

The framing is byte-level (a record may span lines, or many share one line), so a record's
position is its byte offset, and a checkpoint the offset just after the last record taken: a
re-run, or the watcher after a kill, reads on from there, exactly as for JSON lines. A record
is handed on as a `Line` (its number is its place in the file: the array's element 1, 2, ...)
and turned into an event by the JSONL adapter's own code: the same keys, fields and dead
letters. A pretty-printed record is stored compact.

What does not frame (a bracket never closed, bytes after the array's end) is one dead letter
for the rest, with the reason; the records before it stand."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import BinaryIO

import orjson

from .base import MAX_RECORD_BYTES
from .jsonl import JsonlAdapter
from .lines import BOM, DECOMPRESSION_ERRORS, FINGERPRINT_BYTES, Line, LineReader, fingerprint

_WS = b" \t\r\n"
# Where a scan stops inside a record: a quote, a backslash (in strings) or a bracket.
_STRUCTURE = re.compile(rb'["\\\[\]{}]')
_STRING_END = re.compile(rb'["\\]')
# A bare value (a number, true, false, null) ends at one of these.
_BARE_END = re.compile(rb"[\s,\]\[{}\"]")


class ValueReader(LineReader):
    """LineReader's interface, yielding records instead of lines: the elements of a top-level
    array, or top-level values one after another. Started at offset 0 it finds out which from
    the first byte that is not blank; a resumed read is told (`in_array`)."""

    def __init__(
        self,
        f: BinaryIO,
        offset: int,
        number: int,
        *,
        take_tail: bool,
        plain_file: bool = False,
        before: bytes = b"",
        in_array: bool | None = None,
    ) -> None:
        super().__init__(
            f, offset, number, take_tail=take_tail, plain_file=plain_file, before=before
        )
        self.in_array = in_array  # None: not known yet (read from the start)
        self.closed = False  # the array's `]` was read

    async def lines(self) -> AsyncGenerator[list[Line], None]:
        buf = b""
        base = self._offset  # the file offset of buf[0]
        number = self._line_number
        at_end = False
        fingerprinted = self._offset != 0
        while True:
            if not at_end:
                try:
                    chunk, at_end = await asyncio.to_thread(self._read)
                except DECOMPRESSION_ERRORS as exc:
                    if self.take_tail and buf.strip(_WS):
                        yield [Line(number + 1, base, base + len(buf), buf, error=f"{exc}")]
                    elif buf.strip(_WS):
                        self.held_back = 1
                    return
                if chunk:
                    self._window = (self._window + chunk)[-(len(chunk) + 4096) :]
                    self._window_end += len(chunk)
                    buf += chunk
                else:
                    at_end = True
            if not fingerprinted:
                head = buf[len(BOM) :] if buf.startswith(BOM) else buf
                if len(head) < FINGERPRINT_BYTES and b"\n" not in head:
                    # The first line is not whole yet, and it names the file: a record taken
                    # now would be checkpointed under a name the grown file no longer has.
                    if not at_end:
                        continue
                    if not self.take_tail:
                        self.held_back = 1 if head.strip(_WS) else 0
                        return
                self.fingerprint = fingerprint(head[:FINGERPRINT_BYTES])
                fingerprinted = True
            records, used, number, problem = self._frame(buf, base, number, at_end)
            buf, base = buf[used:], base + used
            if problem is not None:
                records.append(problem)
                buf, base = b"", base + len(buf)
            if records:
                yield records
            if at_end:
                break
        if buf.strip(_WS) and not self.closed:
            # A record cut short at the end: taken (as a dead letter, it cannot parse) only when
            # the input is finished, else left for a later read.
            if self.take_tail:
                yield [Line(number + 1, base, base + len(buf), buf.strip(_WS))]
            else:
                self.held_back = 1

    def _frame(
        self, buf: bytes, base: int, number: int, at_end: bool
    ) -> tuple[list[Line], int, int, Line | None]:
        """The whole records at the start of `buf`: (records, bytes used, last number, a dead
        letter for what cannot be framed or None)."""
        records: list[Line] = []
        pos = 0
        while True:
            pos = _skip_blank(buf, pos)
            if pos == 0 and base == 0 and buf.startswith(BOM):
                pos = _skip_blank(buf, len(BOM))
            if pos >= len(buf):
                return records, pos, number, None
            if self.in_array is None:
                self.in_array = buf[pos : pos + 1] == b"["
                if self.in_array:
                    pos += 1
                    continue
            if self.closed:
                rest = buf[pos:]
                why = "bytes after the end of the array"
                bad = Line(number + 1, base + pos, base + len(buf), rest[:1024], error=why)
                return records, len(buf), number, bad
            c = buf[pos : pos + 1]
            if self.in_array and c == b",":
                pos += 1
                continue
            if self.in_array and c == b"]":
                self.closed = True
                pos += 1
                continue
            end = _value_end(buf, pos)
            if end is None:  # not whole in buf
                if len(buf) - pos > MAX_RECORD_BYTES:
                    bad = Line(number + 1, base + pos, base + len(buf), b"", too_long=True)
                    return records, len(buf), number, bad
                return records, pos, number, None
            whole = at_end and self.take_tail  # nothing more will be written
            if end == len(buf) and not whole and buf[pos : pos + 1] not in (b"{", b"[", b'"'):
                return records, pos, number, None  # a bare value may go on in the next chunk
            number += 1
            data = buf[pos:end]
            if b"\n" in data:  # stored compact (what does not parse stays as it is)
                with contextlib.suppress(orjson.JSONDecodeError):
                    data = orjson.dumps(orjson.loads(data))
            records.append(Line(number, base + pos, base + end, data))
            pos = end


def _skip_blank(buf: bytes, pos: int) -> int:
    n = len(buf)
    while pos < n and buf[pos] in _WS:
        pos += 1
    return pos


def _value_end(buf: bytes, pos: int) -> int | None:
    """The offset just after the JSON value that starts at `pos`, or None if it does not end
    in `buf`. Only structure is followed (strings, brackets): what is inside is orjson's."""
    first = buf[pos]
    if first == ord('"'):
        return _string_end(buf, pos + 1)
    if first not in b"[{":
        m = _BARE_END.search(buf, pos + 1)
        return m.start() if m else len(buf)
    depth = 0
    i = pos
    while True:
        m = _STRUCTURE.search(buf, i)
        if m is None:
            return None
        c = buf[m.start()]
        if c == ord('"'):
            after = _string_end(buf, m.start() + 1)
            if after is None:
                return None
            i = after
            continue
        if c == ord("\\"):
            i = m.start() + 2
            continue
        depth += 1 if c in b"[{" else -1
        i = m.start() + 1
        if depth == 0:
            return i


def _string_end(buf: bytes, i: int) -> int | None:
    """The offset just after the string whose content starts at `i` (escapes skipped)."""
    while True:
        m = _STRING_END.search(buf, i)
        if m is None:
            return None
        if buf[m.start()] == ord("\\"):
            i = m.start() + 2
            continue
        return m.start() + 1


class JsonValuesAdapter(JsonlAdapter):
    """`.json`: an array of records, or records one after another (see the module)."""

    name = "json"
    can_start_at_end = False  # the array's `[` is where its reading starts

    def __init__(self, path: Path, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("offload", False)  # framing bytes is this process's own
        super().__init__(path, *args, **kwargs)  # type: ignore[arg-type]

    def frame_again(self, f: BinaryIO) -> tuple[bytes | None, bytes]:
        return _frame_again(f)

    def make_reader(
        self,
        f: BinaryIO,
        offset: int,
        line: int,
        *,
        take_tail: bool,
        plain_file: bool = False,
        before: bytes = b"",
    ) -> LineReader:
        in_array = None if offset == 0 else _starts_array(f)
        return ValueReader(
            f,
            offset,
            line,
            take_tail=take_tail,
            plain_file=plain_file,
            before=before,
            in_array=in_array,
        )


def _frame_again(f: BinaryIO) -> tuple[bytes | None, bytes]:
    """The record that starts where `f` is (after blanks and a separating comma), as the
    reader hands it on (compact when it spans lines): for a dead letter's retry."""
    data = f.read(MAX_RECORD_BYTES + 1)
    pos = _skip_blank(data, 0)
    if data[pos : pos + 1] == b",":
        pos = _skip_blank(data, pos + 1)
    if pos >= len(data):
        return None, b""
    end = _value_end(data, pos)
    if end is None or (end == len(data) and len(data) > MAX_RECORD_BYTES):
        return None, b""
    record = data[pos:end]
    if b"\n" in record:
        with contextlib.suppress(orjson.JSONDecodeError):
            record = orjson.dumps(orjson.loads(record))
    return record, record


def _starts_array(f: BinaryIO) -> bool:
    """Whether the open file's content opens with `[` (read through it, then back where it
    was)."""
    at = f.tell()
    try:
        f.seek(0)
        head = f.read(4096)
    finally:
        f.seek(at)
    head = head[len(BOM) :] if head.startswith(BOM) else head
    return head.lstrip(_WS)[:1] == b"["
