"""Plain log lines (a file, or stdin as '-'): one event per record; lines that start with
whitespace continue the record before them (stack traces). An optional regex with named
groups turns each record into fields; a record it does not match is dead-lettered."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from eventlog import DeadLetter, NewEvent

from .base import Batch
from .fields import FieldMap, parse_time_ns
from .jsonl import _stem
from .linefile import LineFileAdapter, ReadFrom
from .lines import Line, line_key, position, read_lines

STDIN = Path("-")


class LogAdapter(LineFileAdapter):
    name = "log"

    def __init__(
        self,
        path: Path,
        fields: FieldMap | None = None,
        *,
        final: bool = True,
        pattern: str | None = None,
    ) -> None:
        super().__init__(path, fields, final=final)
        self.regex = re.compile(pattern) if pattern else None
        self.is_stdin = path == STDIN
        if self.is_stdin:
            self.source = "stdin"
        self.stream = self.fields.stream or ("stdin" if self.is_stdin else _stem(path))

    def batches(self, checkpoint: Any | None) -> AsyncGenerator[Batch, None]:
        if self.is_stdin:
            return self._stdin()
        return super().batches(checkpoint)

    async def read_file(self, at: ReadFrom) -> AsyncGenerator[Batch, None]:
        path, identity, final = at.path, at.identity, at.final
        record: list[Line] = []
        async for lines in read_lines(path, at.offset, at.line_no, final=final):
            batch = Batch()
            for line in lines:
                if record and line.data[:1] in (b" ", b"\t") and not line.problem:
                    record.append(line)
                    continue
                if record:
                    self._convert(record, line_key(identity, record[0]), batch)
                record = [line]
            # A record is complete only once a line that is not a continuation follows it, so
            # the checkpoint stays at the start of the open one; a one-shot ingest flushes it.
            if record:
                batch.position = position(identity, record[0].offset, record[0].number - 1)
            else:
                batch.position = position(identity, lines[-1].end, lines[-1].number)
            yield batch
        if record and final:
            batch = Batch()
            self._convert(record, line_key(identity, record[0]), batch)
            batch.position = position(identity, record[-1].end, record[-1].number)
            yield batch

    async def _stdin(self) -> AsyncGenerator[Batch, None]:
        """stdin has no offsets to resume from: keys come from content and its ordinal, so
        piping the same text again appends nothing."""
        reader = sys.stdin.buffer
        number = 0
        seen: dict[bytes, int] = {}
        record: list[Line] = []

        def flush(batch: Batch) -> None:
            data = b"\n".join(r.data for r in record)
            seen[data] = seen.get(data, 0) + 1
            digest = hashlib.blake2b(data, digest_size=10).hexdigest()
            self._convert(record, f"stdin:{digest}:{seen[data]}", batch)

        while True:
            chunk = await asyncio.to_thread(reader.readlines, 1 << 16)
            batch = Batch(position=None)
            if not chunk:
                if record:
                    flush(batch)
                    yield batch
                return
            for raw in chunk:
                number += 1
                line = Line(number, 0, 0, raw.rstrip(b"\r\n"))
                if record and line.data[:1] in (b" ", b"\t"):
                    record.append(line)
                    continue
                if record:
                    flush(batch)
                record = [line]
            yield batch

    def _convert(self, record: list[Line], key: str, batch: Batch) -> None:
        first = record[0]
        where = f"{'<stdin>' if self.is_stdin else self._reading}:{first.number}"
        if first.problem:
            batch.dead_letters.append(DeadLetter(self.source, where, first.problem))
            return
        raw = b"\n".join(r.data for r in record)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            batch.dead_letters.append(
                DeadLetter(self.source, where, f"invalid UTF-8: {exc.reason}", raw[:65536])
            )
            return
        if not text.strip():
            return
        payload: dict[str, Any] = {"line": text}
        source_time = None
        if self.regex is not None:
            m = self.regex.match(text)
            if m is None:
                batch.dead_letters.append(
                    DeadLetter(self.source, where, "does not match --pattern", raw[:65536])
                )
                return
            payload.update({k: v for k, v in m.groupdict().items() if v is not None})
            if self.fields.time_field and self.fields.time_field in payload:
                try:
                    source_time = parse_time_ns(payload[self.fields.time_field])
                except ValueError as exc:
                    batch.dead_letters.append(DeadLetter(self.source, where, str(exc), raw[:65536]))
                    return
        batch.events.append(
            NewEvent(
                stream=self.stream,
                type=self.fields.event_type or "log",
                payload=payload,
                key=key,
                source_time_ns=source_time,
                metadata={
                    "source": "stdin" if self.is_stdin else str(self.path),
                    "line": first.number,
                },
            )
        )
