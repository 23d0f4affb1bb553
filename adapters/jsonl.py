"""JSONL / NDJSON adapter (gzip too): one event per line, the line itself stored as the payload."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import orjson

from eventlog import DeadLetter, NewEvent

from .base import Batch
from .fields import FieldMap, get_field, parse_time_ns
from .lines import Line, identify, line_key, position, read_lines, resume_offset


class JsonlAdapter:
    name = "jsonl"

    def __init__(self, path: Path, fields: FieldMap | None = None, *, final: bool = True) -> None:
        self.path = path
        self.fields = fields or FieldMap()
        self.final = final
        self.source = f"file:{path.resolve()}"
        self.default_stream = self.fields.stream or _stem(path)

    async def batches(self, checkpoint: Any | None) -> AsyncGenerator[Batch, None]:
        identity = await asyncio.to_thread(identify, self.path)
        offset, line_no = resume_offset(self.path, identity, checkpoint)
        async for lines in read_lines(self.path, offset, line_no, final=self.final):
            batch = Batch(position=position(identity, lines[-1].end, lines[-1].number))
            for line in lines:
                self._convert(line, line_key(identity, line), batch)
            yield batch

    def _convert(self, line: Line, key: str, batch: Batch) -> None:
        if line.problem:
            batch.dead_letters.append(self._dead(line, line.problem))
            return
        if not line.data.strip():
            return
        try:
            record = orjson.loads(line.data)
        except orjson.JSONDecodeError as exc:
            batch.dead_letters.append(self._dead(line, f"malformed JSON: {exc}"))
            return
        f = self.fields
        try:
            stream = _text(get_field(record, f.stream_field)) if f.stream_field else None
            event_type = _text(get_field(record, f.type_field)) if f.type_field else None
            custom_key = _text(get_field(record, f.key_field)) if f.key_field else None
            source_time = parse_time_ns(get_field(record, f.time_field)) if f.time_field else None
        except ValueError as exc:
            batch.dead_letters.append(self._dead(line, str(exc)))
            return
        stream = stream or self.default_stream
        batch.events.append(
            NewEvent(
                stream=stream,
                type=event_type or f.event_type or "record",
                payload=line.data,
                key=f"{stream}:{custom_key}" if custom_key else key,
                source_time_ns=source_time,
                metadata={"source": str(self.path), "line": line.number},
            )
        )

    def _dead(self, line: Line, reason: str) -> DeadLetter:
        return DeadLetter(
            source=self.source,
            position=f"{self.path}:{line.number}",
            error=reason,
            raw=line.data[:65536],
        )


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".log", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or path.name


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise ValueError(f"expected a scalar field, got {type(value).__name__}")
    return str(value)
