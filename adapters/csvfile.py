"""CSV/TSV adapter: a header row, then one event per record (quoted newlines allowed); the
record as a JSON object of header -> value. Resumes after the last complete record."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from eventlog import DeadLetter, NewEvent

from .base import Batch
from .fields import FieldMap, get_field, parse_time_ns
from .jsonl import _stem, _text
from .linefile import LineFileAdapter, ReadFrom
from .lines import Line, line_key, position, read_lines


class CsvAdapter(LineFileAdapter):
    name = "csv"

    def __init__(self, path: Path, fields: FieldMap | None = None, *, final: bool = True) -> None:
        super().__init__(path, fields, final=final)
        self.stream = self.fields.stream or _stem(path)
        name = path.name.lower().removesuffix(".gz")
        self.delimiter = "\t" if name.endswith((".tsv", ".tab")) else ","

    async def read_file(self, at: ReadFrom) -> AsyncGenerator[Batch, None]:
        path, identity, final = at.path, at.identity, at.final
        header: list[str] | None = (
            at.checkpoint.get("header") if at.offset and at.checkpoint else None
        )
        pending: list[Line] = []
        async for lines in read_lines(path, at.offset, at.line_no, final=final):
            batch = Batch()
            done_at: Line | None = None
            for line in lines:
                if line.problem:
                    batch.dead_letters.append(self._dead(line, line.problem))
                    pending, done_at = [], line
                    continue
                pending.append(line)
                text_so_far = b"\n".join(p.data for p in pending)
                if text_so_far.count(b'"') % 2:
                    continue  # inside a quoted field that spans lines
                first, record_bytes = pending[0], text_so_far
                pending, done_at = [], line
                if not record_bytes.strip():
                    continue
                try:
                    text = record_bytes.decode("utf-8")
                except UnicodeDecodeError as exc:
                    batch.dead_letters.append(self._dead(first, f"invalid UTF-8: {exc.reason}"))
                    continue
                row = next(csv.reader(io.StringIO(text), delimiter=self.delimiter), [])
                if header is None:
                    header = [h.strip() for h in row]
                    continue
                if len(row) != len(header):
                    batch.dead_letters.append(
                        self._dead(first, f"expected {len(header)} columns, got {len(row)}")
                    )
                    continue
                self._convert(dict(zip(header, row, strict=True)), first, identity, batch)
            if done_at is not None:
                batch.position = {
                    **position(identity, done_at.end, done_at.number),
                    "header": header,
                }
                yield batch

    def _convert(self, record: dict[str, str], line: Line, identity: Any, batch: Batch) -> None:
        f = self.fields
        try:
            stream = _text(get_field(record, f.stream_field)) if f.stream_field else None
            event_type = _text(get_field(record, f.type_field)) if f.type_field else None
            custom_key = _text(get_field(record, f.key_field)) if f.key_field else None
            source_time = parse_time_ns(get_field(record, f.time_field)) if f.time_field else None
        except ValueError as exc:
            batch.dead_letters.append(self._dead(line, str(exc)))
            return
        stream = stream or self.stream
        batch.events.append(
            NewEvent(
                stream=stream,
                type=event_type or f.event_type or "record",
                payload=record,
                key=f"{stream}:{custom_key}" if custom_key else line_key(identity, line),
                source_time_ns=source_time,
                metadata={"source": str(self.path), "line": line.number},
            )
        )

    def _dead(self, line: Line, reason: str) -> DeadLetter:
        return DeadLetter(self.source, f"{self._reading}:{line.number}", reason, line.data[:65536])
