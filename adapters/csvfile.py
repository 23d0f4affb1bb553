"""CSV/TSV adapter: a header row, then one event per record (quoted newlines allowed); the
record as a JSON object of header -> value. Resumes after the last complete record.

Records are framed the way Python's csv module, DuckDB and spreadsheets read them: a quote opens
a quoted field only at the start of a field (`15" monitor` is literal text). A quoted field that
is never closed is a dead letter for the line that opened it (at the end of the input, or once
it passes MAX_RECORD_BYTES, 16 MB, the limit of every record evlog reads; a field may be as
large), and the lines after it are read again as records of their own.

The delimiter is `--delimiter`, else a tab for .tsv/.tab, else sniffed from the first lines (the
candidate that splits them into the same number of fields, more than one); the one used is kept
in the checkpoint. `--detect-types` stores integers and decimals as JSON numbers."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import zlib
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from evlog.eventlog import NewEvent

from .base import MAX_RECORD_BYTES, Batch, InputError
from .checkpoints import FileCheckpoint
from .fields import (
    MESSAGE_FIELDS_HINT,
    FieldMap,
    get_field,
    lacks_message_fields,
    parse_time_ns,
    scalar_text,
)
from .lineage import Placement
from .linefile import LineFileAdapter, ReadFrom
from .lines import FileIdentity, Line, line_key, open_binary

# Python's csv refuses fields over 128 KB by default; DuckDB reads larger ones, and so does
# evlog, up to the size of a record (the limit is the csv module's, for the process).
csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD_BYTES))
QUOTE = ord('"')
SNIFF_BYTES = 64 << 10
SNIFF_LINES = 20
CANDIDATES = (",", "\t", ";", "|")
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
# A decimal point or an exponent; leading zeros (ids such as 007) stay text.
_FLOAT = re.compile(r"[-+]?(0|[1-9][0-9]*)(\.[0-9]+([eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)")


def sniff_delimiter(head: bytes) -> str | None:
    """The delimiter of a CSV file from its first bytes: of the candidates, the one that splits
    the first complete lines into the same number of fields (more than one), the most fields
    winning; None when no candidate does."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = [ln for ln in text.split("\n")[:-1] if ln.strip()][:SNIFF_LINES]
    if not lines:
        lines = [text] if text.strip() else []
    best: tuple[int, str] | None = None
    for d in CANDIDATES:
        try:
            counts = {len(r) for r in csv.reader(lines, delimiter=d)}
        except csv.Error:
            continue
        if len(counts) == 1 and (n := counts.pop()) > 1 and (best is None or n > best[0]):
            best = (n, d)
    return best[1] if best else None


def delimiter_of(given: str | None) -> str | None:
    """`--delimiter` as a character (`\\t` is a tab); InputError if it is not one."""
    if given is None:
        return None
    delimiter = given.replace("\\t", "\t")
    if len(delimiter) != 1:
        raise InputError(f"--delimiter {given!r}: one character (\\t for a tab)")
    return delimiter


def typed(value: str) -> Any:
    """A CSV cell as a number when it reads as one (--detect-types), else the text."""
    v = value.strip()
    if _INT.fullmatch(v):
        return int(v)
    if _FLOAT.fullmatch(v):
        f = float(v)
        return f if f == f and f not in (float("inf"), float("-inf")) else value
    return value


def ends_in_quotes(data: bytes, in_quotes: bool, delimiter: int) -> bool:
    """Whether a record that was `in_quotes` before this line is still inside a quoted field
    after it (so the line's newline belongs to the field)."""
    if not in_quotes and QUOTE not in data:
        return False
    n = len(data)
    i = 0
    field_start = not in_quotes
    while i < n:
        if in_quotes:
            q = data.find(b'"', i)
            if q < 0:
                return True
            if q + 1 < n and data[q + 1] == QUOTE:
                i = q + 2  # "" is a quote inside the field
                continue
            in_quotes, field_start, i = False, False, q + 1
            continue
        if field_start and data[i] == QUOTE:
            in_quotes, i = True, i + 1
            continue
        d = data.find(delimiter, i)  # an unquoted field: quotes in it are literal text
        if d < 0:
            return False
        field_start, i = True, d + 1
    return in_quotes


def unique_header(names: list[str]) -> list[str]:
    """Header names made unique (`a`, `a_2`), so no column's value is dropped."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        n = seen.get(name, 0) + 1
        seen[name] = n
        out.append(name if n == 1 else f"{name}_{n}")
    return out


@dataclass(slots=True)
class _Framing:
    """A record being assembled from lines, carried from one chunk of the file to the next."""

    pending: list[Line] = field(default_factory=list)
    pending_bytes: int = 0
    in_quotes: bool = False

    def take(self) -> list[Line]:
        lines, self.pending, self.pending_bytes, self.in_quotes = self.pending, [], 0, False
        return lines


class CsvAdapter(LineFileAdapter):
    name = "csv"
    can_start_at_end = False

    def __init__(
        self,
        path: Path,
        fields: FieldMap | None = None,
        *,
        final: bool = True,
        delimiter: str | None = None,
        detect_types: bool = False,
        placement: Placement | None = None,
    ) -> None:
        super().__init__(path, fields, final=final, placement=placement)
        self.given_delimiter = delimiter_of(delimiter)
        name = path.name.lower().removesuffix(".gz")
        self.by_name = "\t" if name.endswith((".tsv", ".tab")) else None
        self.delimiter = self.given_delimiter or self.by_name or ","
        self.detect_types = detect_types
        self._header: list[str] | None = None
        self._said_unnamed = False  # the hint about message fields is given once a read

    async def read_file(self, at: ReadFrom) -> AsyncGenerator[Batch, None]:
        self._header = at.checkpoint.get("header") if at.line_no and at.checkpoint else None
        if self._header:
            self._resume_delimiter(at.checkpoint)
        elif self.given_delimiter is None and self.by_name is None and at.identity.seekable:
            head = await asyncio.to_thread(_head, at.path)
            self.delimiter = sniff_delimiter(head) or ","
        framing = _Framing()
        todo: deque[Line] = deque()
        async for lines in at.reader.lines():
            todo.extend(lines)
            batch = Batch()
            done_at = self._frame(todo, framing, at.identity, batch)
            if done_at is not None:
                batch.position = await self._position(at, done_at)
                yield batch
        batch = Batch()
        done_at = None
        while framing.pending and at.final:  # the input ended inside a quoted field
            self._give_up(framing, todo, batch, "unterminated quoted field at the end of the input")
            done_at = self._frame(todo, framing, at.identity, batch) or done_at
        if framing.pending:
            at.reader.held_back = 1  # the open record (its last line may be the held tail)
        if done_at is not None:
            batch.position = await self._position(at, done_at)
            yield batch

    def _resume_delimiter(self, checkpoint: Any | None) -> None:
        """Read on with the delimiter the file was read with (kept in its checkpoint), unless
        one is given or the name says."""
        if isinstance(checkpoint, dict) and self.given_delimiter is None and self.by_name is None:
            self.delimiter = checkpoint.get("delimiter") or self.delimiter

    async def _position(self, at: ReadFrom, done_at: Line) -> FileCheckpoint | None:
        return await self.position(
            at, done_at.end, done_at.number, header=self._header, delimiter=self.delimiter
        )

    def _frame(
        self, todo: deque[Line], framing: _Framing, identity: FileIdentity, batch: Batch
    ) -> Line | None:
        """Turn the lines in `todo` into records; returns the last line of the last one
        finished (the checkpoint goes after it), or None if none was."""
        done_at = None
        delimiter = ord(self.delimiter)
        while todo:
            line = todo.popleft()
            if line.problem:
                if framing.pending:  # the open record cannot span a broken line
                    todo.appendleft(line)
                    done_at = self._give_up(framing, todo, batch, "unterminated quoted field")
                    continue
                batch.records += 1
                batch.dead_letters.append(self.dead(line, line.problem))
                done_at = line
                continue
            framing.pending.append(line)
            framing.pending_bytes += len(line.data) + 1
            framing.in_quotes = ends_in_quotes(line.data, framing.in_quotes, delimiter)
            if framing.in_quotes:
                if framing.pending_bytes > MAX_RECORD_BYTES:
                    reason = (
                        f"unterminated quoted field (still open after {MAX_RECORD_BYTES} bytes)"
                    )
                    done_at = self._give_up(framing, todo, batch, reason)
                continue
            record = framing.take()
            done_at = record[-1]
            self._record(record, identity, batch)
        return done_at

    def _give_up(self, framing: _Framing, todo: deque[Line], batch: Batch, reason: str) -> Line:
        """The open record's first line is a dead letter; the lines after it are read again."""
        first, *rest = framing.take()
        batch.records += 1
        batch.dead_letters.append(self.dead(first, reason))
        todo.extendleft(reversed(rest))
        return first

    def _record(self, lines: list[Line], identity: FileIdentity, batch: Batch) -> None:
        """One framed record: the header if none is known yet, else a row. Every row, and a
        header that cannot be read, counts as a record read (it ends as an event or a dead
        letter, whatever happens below)."""
        raw = b"\n".join(line.data for line in lines)
        if not raw.strip():
            return  # a blank line is not a record
        first = lines[0]
        is_header = self._header is None
        try:
            row = self._row(raw)
        except ValueError as exc:  # invalid UTF-8, a NUL, ...: csv.Error is a ValueError too
            batch.records += 1
            batch.dead_letters.append(self.dead(first, str(exc), raw))
            return
        if is_header:
            self._header = unique_header([h.strip() for h in row])
            return
        batch.records += 1
        header = self._header or []
        if len(row) != len(header):
            reason = f"expected {len(header)} columns, got {len(row)}"
            batch.dead_letters.append(self.dead(first, reason, raw))
            return
        values: list[Any] = [typed(v) for v in row] if self.detect_types else list(row)
        try:
            self._convert(dict(zip(header, values, strict=True)), first, identity, batch)
        except Exception as exc:  # one record never stops the file: a dead letter
            batch.dead_letters.append(self.dead(first, f"cannot read: {exc!r}", raw))

    def _row(self, raw: bytes) -> list[str]:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"invalid UTF-8: {exc.reason}") from None
        try:
            return next(csv.reader(io.StringIO(text), delimiter=self.delimiter), [])
        except csv.Error as exc:
            raise ValueError(f"not CSV: {exc}") from None

    def reread(self, letter: dict[str, Any], checkpoint: Any | None) -> Batch:
        self._resume_delimiter(checkpoint)  # framing a record read again needs it
        return super().reread(letter, checkpoint)

    def frame_again(self, f: BinaryIO) -> tuple[bytes | None, bytes]:
        """The CSV record that starts where `f` is, quoted newlines included."""
        delimiter = ord(self.delimiter)
        lines: list[bytes] = []
        size, in_quotes = 0, False
        while size <= MAX_RECORD_BYTES:
            data = f.readline(MAX_RECORD_BYTES + 1 - size)
            if not data:
                return None, b""  # the file ends inside a quoted field
            size += len(data)
            line = data.rstrip(b"\n").removesuffix(b"\r")
            lines.append(line)
            in_quotes = ends_in_quotes(line, in_quotes, delimiter)
            if not in_quotes:
                return b"\n".join(lines), lines[0]
        return None, b""

    def convert_again(
        self, line: Line, identity: FileIdentity, checkpoint: Any | None, batch: Batch
    ) -> None:
        header = checkpoint.get("header") if isinstance(checkpoint, dict) else None
        self._resume_delimiter(checkpoint)
        if header is None:
            batch.dead_letters.append(self.dead(line, "no header known for this file yet"))
            return
        self._header = header
        self._record([line], identity, batch)

    def _convert(
        self, record: dict[str, Any], line: Line, identity: FileIdentity, batch: Batch
    ) -> None:
        f = self.fields
        try:
            stream = scalar_text(get_field(record, f.stream_field)) if f.stream_field else None
            event_type = scalar_text(get_field(record, f.type_field)) if f.type_field else None
            custom_key = scalar_text(get_field(record, f.key_field)) if f.key_field else None
            source_time = (
                parse_time_ns(get_field(record, f.time_field), f.time_format)
                if f.time_field
                else None
            )
        except ValueError as exc:
            batch.dead_letters.append(self.dead(line, str(exc)))
            return
        stream = stream or self.default_stream
        kind = event_type or f.event_type or "record"
        if kind == "message":
            record = f.with_message_fields(record)
            if not self._said_unnamed and lacks_message_fields(record):
                self._said_unnamed = True
                batch.notes.append(f"{self.where(line)}: {MESSAGE_FIELDS_HINT}")
        batch.events.append(
            NewEvent(
                stream=stream,
                type=kind,
                payload=record,
                key=f"{stream}:{custom_key}" if custom_key else line_key(identity, line),
                source_time_ns=source_time,
                metadata={"source": str(self._reading), "line": line.number},
            )
        )


def _head(path: Path) -> bytes:
    """The first bytes of a (possibly gzipped) file, for sniffing its delimiter. A gzip stream
    that breaks before them gives what came before the break (the reader then reports where)."""
    head = bytearray()
    try:
        with open_binary(path) as f:
            while len(head) < SNIFF_BYTES and (chunk := f.read(SNIFF_BYTES - len(head))):
                head += chunk
    except (EOFError, OSError, zlib.error):
        pass
    return bytes(head)
