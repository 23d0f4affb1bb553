"""Common ground of the adapters that read a file as lines (JSONL, CSV, plain logs): the source
name, resuming from a stored position, finishing a rotated file before its successor, reading
pipes and stdin once as a stream, and counting what was held back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evlog.eventlog import DeadLetter

from .base import RAW_LIMIT, Batch
from .fields import FieldMap
from .lines import (
    CHUNK_BYTES,
    SETTLE_S,
    STDIN,
    FileIdentity,
    Line,
    LineReader,
    ResumeAt,
    block_before,
    is_stream,
    line_key,
    open_binary,
    open_stream,
    position,
    resume_at,
    settled,
    stream_identity,
    tail_digest,
    with_rotation,
)

RETRY_NAMESPACE = "retry"

_SUFFIXES = (".gz", ".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".tab", ".log", ".txt")


def stem(path: Path) -> str:
    """The default stream name of a file: its name without the format's suffixes."""
    if path == STDIN:
        return "stdin"
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or path.name


def file_source(path: Path) -> str:
    """The stable name of a file source (checkpoints and dead letters are filed under it)."""
    if path == STDIN:
        return "stdin"
    try:
        return f"file:{path.resolve(strict=False)}"
    except OSError:
        return f"file:{path}"


@dataclass(frozen=True, slots=True)
class ReadFrom:
    """One read of one file: where it starts and the reader that yields its lines."""

    path: Path
    identity: FileIdentity
    line_no: int
    checkpoint: Any | None
    reader: LineReader

    @property
    def final(self) -> bool:
        """The input has ended for good (a one-shot read of a file unchanged for SETTLE_S, a
        rotated file, a stream at its end): even a record without its end is taken."""
        return self.reader.take_tail


def _moved(checkpoint: Any | None, identity: FileIdentity, offset: int) -> bool:
    """Whether a checkpoint does not already say: this file, this generation, this offset."""
    if not isinstance(checkpoint, dict):
        return True
    same = (checkpoint.get("ino"), checkpoint.get("gen", 0), checkpoint.get("offset"))
    return same != (identity.ino, identity.generation, offset)


def end_of_last_line(path: Path) -> tuple[int, int]:
    """(byte offset just after the file's last newline, lines before it): where a read that
    starts at the end (`--read-from end`) begins."""
    offset = lines = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            n = chunk.count(b"\n")
            if n:
                lines += n
                offset = f.tell() - len(chunk) + chunk.rindex(b"\n") + 1
    return offset, lines


class LineFileAdapter:
    name: str
    # Whether `--read-from end` can skip what a new file holds (a CSV needs its header).
    can_start_at_end = True

    def __init__(self, path: Path, fields: FieldMap | None = None, *, final: bool = True) -> None:
        self.path = path
        self.fields = fields or FieldMap()
        self.final = final
        self.source = file_source(path)
        self.default_stream = self.fields.default_stream(self.name, stem(path))
        # How long the file must be unchanged before its last record counts as finished.
        self.settle_s = SETTLE_S
        self._reading = path  # the file being read: the old one while finishing a rotated file
        self._identity: FileIdentity | None = None  # of the read under way
        # `--read-from end`: a file never read before starts at its end (a live log's past is
        # not wanted); its checkpoint then says so, and later runs go on from there.
        self.start_at_end = False

    def where(self, line: Line) -> str:
        """`file:line` of a record, for dead letters and messages."""
        return f"{'<stdin>' if self._reading == STDIN else self._reading}:{line.number}"

    def dead(self, line: Line, reason: str, raw: bytes | None = None) -> DeadLetter:
        """A dead letter for the record that starts at `line`, with the key it would have had
        (a retry that reads it with a fixed mapping appends it under that key)."""
        data = line.data if raw is None else raw
        key = None if self._identity is None else line_key(self._identity, line)
        return DeadLetter(self.source, self.where(line), reason, data[:RAW_LIMIT], key)

    def reread(self, letter: dict[str, Any], checkpoint: Any | None) -> Batch:
        """Read one dead-lettered record again with this adapter's mapping: a batch with its
        event, or a dead letter saying why it still cannot be read. The event's key is the one
        the record would have had when first read (or one made from the dead letter's id)."""
        raw = letter["raw"] or b""
        tail = str(letter["position"]).rsplit(":", 1)[-1]  # "file:line"
        line = Line(int(tail) if tail.isdigit() else 0, 0, len(raw), raw)
        retry = FileIdentity(0, 0, "", RETRY_NAMESPACE, seekable=False)
        self._identity = None
        batch = Batch()
        try:
            self.convert_again(line, retry, checkpoint, batch)
        except Exception as exc:  # still unreadable: the dead letter stays
            batch.dead_letters.append(self.dead(line, f"cannot read: {exc!r}"))
        own = letter["key"] or f"deadletter:{letter['id']}"
        for event in batch.events:
            if event.key is not None and event.key.startswith(RETRY_NAMESPACE + ":"):
                event.key = own
        return batch

    def convert_again(
        self, line: Line, identity: FileIdentity, checkpoint: Any | None, batch: Batch
    ) -> None:
        """Turn one record's raw bytes (a dead letter's) into an event or a dead letter."""
        raise NotImplementedError

    def batches(self, checkpoint: Any | None) -> AsyncGenerator[Batch, None]:
        if is_stream(self.path):
            return self._read_stream()
        return with_rotation(self.path, checkpoint, self._read)

    async def _read(
        self, path: Path, checkpoint: Any | None, rotated: bool
    ) -> AsyncGenerator[Batch, None]:
        self._reading = path
        at = await asyncio.to_thread(resume_at, path, self.source, checkpoint)
        notes = []
        if at.restarted:
            notes.append(f"{path}: read from the start as new content: {at.restarted}")
        if self.start_at_end and checkpoint is None and not rotated and not at.identity.gzip:
            if self.can_start_at_end:
                offset, lines = await asyncio.to_thread(end_of_last_line, path)
                at = ResumeAt(at.identity, offset, lines)
                notes.append(f"{path}: started at its end (--read-from end): {lines} lines skipped")
            else:
                notes.append(f"{path}: read from the start: a {self.name} file needs its header")
        take_tail = rotated or (
            self.final and await asyncio.to_thread(settled, path, self.settle_s)
        )
        f = await asyncio.to_thread(open_binary, path)
        try:
            if at.offset:
                await asyncio.to_thread(f.seek, at.offset)
            reader = LineReader(f, at.offset, at.line, take_tail=take_tail)
            self._identity = at.identity
            read_from = ReadFrom(path, at.identity, at.line, checkpoint, reader)
            read_any = False
            async with aclosing(self.read_file(read_from)) as batches:
                async for batch in batches:
                    batch.notes += notes
                    notes = []
                    read_any = True
                    yield batch
            if not read_any and _moved(checkpoint, at.identity, at.offset):
                # Nothing to read (an empty file), but remember this file: were it rotated
                # before the next run, that run could not know to finish it.
                yield Batch(position=await self.position(read_from, at.offset, at.line))
        finally:
            await asyncio.to_thread(f.close)
        if reader.held_back:
            why = (
                f"the file changed in the last {self.settle_s:g} s; a later run takes it"
                if self.final
                else "waiting for the end of the record"
            )
            notes.append(f"{path}: {reader.held_back} record(s) held back, not finished: {why}")
        if notes:
            yield Batch(held_back=reader.held_back, notes=notes)

    async def _read_stream(self) -> AsyncGenerator[Batch, None]:
        """A pipe, FIFO or stdin: read once to its end; keys unique to this run, no checkpoint."""
        self._reading = self.path
        f = await asyncio.to_thread(open_stream, self.path)
        try:
            reader = LineReader(f, 0, 0, take_tail=True)
            self._identity = stream_identity(self.source)
            read_from = ReadFrom(self.path, self._identity, 0, None, reader)
            name = "<stdin>" if self.path == STDIN else self.path
            notes = [f"{name}: read once as a stream (no resume point; piped again, it is new)"]
            async with aclosing(self.read_file(read_from)) as batches:
                async for batch in batches:
                    batch.position = None
                    batch.notes += notes
                    notes = []
                    yield batch
        finally:
            await asyncio.to_thread(f.close)

    async def position(self, at: ReadFrom, offset: int, line: int) -> dict[str, Any] | None:
        """The checkpoint after `line` lines at byte `offset`, with the hash of the bytes before
        it (from the reader's memory, else read back from the file)."""
        if not at.identity.seekable:
            return None
        tail = None if at.identity.gzip else at.reader.tail_at(offset)
        if tail is None:
            block = await asyncio.to_thread(block_before, at.path, at.identity, offset)
            tail = tail_digest(block)
        return position(at.identity, offset, line, tail)

    def read_file(self, at: ReadFrom) -> AsyncGenerator[Batch, None]:
        """Batches from `at` to the end of the file (or its last complete record if not final)."""
        raise NotImplementedError
