"""Plain log lines (a file, a pipe, or stdin as '-'): one event per record; lines that start with
whitespace continue the record before them (stack traces). An optional regex with named
groups turns each record into fields; a record it does not match is dead-lettered."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from evlog.eventlog import NewEvent

from .base import Batch
from .fields import FieldMap, parse_time_ns
from .lineage import Placement
from .linefile import LineFileAdapter, ReadFrom
from .lines import STDIN, FileIdentity, Line, line_key

__all__ = ["STDIN", "LogAdapter"]


class LogAdapter(LineFileAdapter):
    name = "log"

    def __init__(
        self,
        path: Path,
        fields: FieldMap | None = None,
        *,
        final: bool = True,
        pattern: str | None = None,
        placement: Placement | None = None,
    ) -> None:
        super().__init__(path, fields, final=final, placement=placement)
        self.regex = re.compile(pattern) if pattern else None

    async def read_file(self, at: ReadFrom) -> AsyncGenerator[Batch, None]:
        record: list[Line] = []
        async for lines in at.reader.lines():
            batch = Batch()
            for line in lines:
                if not line.problem and not line.data.strip():  # ends a record, starts none
                    if record:
                        self._take(record, at.identity, batch)
                    record = []
                    continue
                if record and line.data[:1] in (b" ", b"\t") and not line.problem:
                    record.append(line)
                    continue
                if record:
                    self._take(record, at.identity, batch)
                record = [line]
            # A record is complete only once a line that is not a continuation follows it, so
            # the checkpoint stays at the start of the open one; a finished input flushes it.
            if record:
                batch.position = await self.position(at, record[0].offset, record[0].number - 1)
            else:
                batch.position = await self.position(at, lines[-1].end, lines[-1].number)
            yield batch
        # The last record is complete when the input is (unchanged for a moment, rotated, a
        # stream at its end): a file still being written may add continuation lines to it.
        if record and at.final:
            batch = Batch()
            self._take(record, at.identity, batch)
            batch.position = await self.position(at, record[-1].end, record[-1].number)
            yield batch
        elif record:
            at.reader.held_back += 1  # the open record waits for the line after it

    def _take(self, record: list[Line], identity: FileIdentity, batch: Batch) -> None:
        batch.records += 1
        try:
            self._convert(record, line_key(identity, record[0]), batch)
        except Exception as exc:  # one record never stops the file: a dead letter
            batch.dead_letters.append(self.dead(record[0], f"cannot read: {exc!r}"))

    def convert_again(
        self, line: Line, identity: FileIdentity, checkpoint: Any | None, batch: Batch
    ) -> None:
        self._convert([line], line_key(identity, line), batch)

    def _convert(self, record: list[Line], key: str, batch: Batch) -> None:
        first = record[0]
        if first.problem:
            batch.dead_letters.append(self.dead(first, first.problem))
            return
        raw = b"\n".join(r.data for r in record)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            batch.dead_letters.append(self.dead(first, f"invalid UTF-8: {exc.reason}", raw))
            return
        payload: dict[str, Any] = {"line": text}
        source_time = None
        if self.regex is not None:
            m = self.regex.match(text)
            if m is None:
                batch.dead_letters.append(self.dead(first, "does not match --pattern", raw))
                return
            payload.update({k: v for k, v in m.groupdict().items() if v is not None})
            if self.fields.time_field and self.fields.time_field in payload:
                try:
                    source_time = parse_time_ns(
                        payload[self.fields.time_field], self.fields.time_format
                    )
                except ValueError as exc:
                    batch.dead_letters.append(self.dead(first, str(exc), raw))
                    return
        batch.events.append(
            NewEvent(
                stream=self.default_stream,
                type=self.fields.event_type or "log",
                payload=payload,
                key=key,
                source_time_ns=source_time,
                metadata={
                    "source": "stdin" if self._reading == STDIN else str(self._reading),
                    "line": first.number,
                },
            )
        )
