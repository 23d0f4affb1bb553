"""Log lines (a file, a pipe, or stdin as '-'): one event per record; lines that start with
whitespace continue the record before them (stack traces). A record becomes fields by a regex
with named groups (`--pattern`; a record it does not match is dead-lettered), or by a built-in
format (adapters/logformats.py): the one `--format` names (a record not of it is dead-lettered),
else the one a new file's first lines are told to be, stored with the generation's checkpoint
so that the rest of the file is read the same way (a record not of it is kept as its text)."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from evlog.eventlog import NewEvent

from .base import Batch
from .fields import FieldMap, parse_time_ns, time_zone
from .lineage import Placement
from .linefile import LineFileAdapter, ReadFrom
from .lines import STDIN, FileIdentity, Line, line_key
from .logformats import FORMATS, PLAIN, Context, LogFormat, NotATime, detect

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
        log_format: str | None = None,
        tz: str | None = None,
        placement: Placement | None = None,
    ) -> None:
        super().__init__(path, fields, final=final, placement=placement)
        self.regex = re.compile(pattern) if pattern else None
        self.given_format = log_format  # --format (PLAIN: none), else told from the lines
        self.context = Context(zone=time_zone(tz))
        # The format of the generation being read (None: plain lines), and whether it was
        # told from the lines (a record not of it is then kept as its text).
        self.format: LogFormat | None = None
        self.detected = False
        self.unmatched = 0  # records of a detected format's file that were not of it

    def _known_format(self, record: Any) -> tuple[LogFormat | None, bool] | None:
        """(the format, whether it was told from the lines) of the generation whose checkpoint
        record is `record`, where no line need be looked at: none with --pattern or --format
        plain, --format's, else the one stored with a generation read before (none stored:
        plain lines, as it was read). None: a generation read from its start, to be told."""
        if self.regex is not None or self.given_format == PLAIN:
            return None, False
        if self.given_format is not None:
            return FORMATS[self.given_format], False
        if isinstance(record, dict) and int(record.get("offset") or 0) > 0:
            stored = record.get("format")
            found = FORMATS.get(stored) if isinstance(stored, str) else None
            return found, found is not None
        return None

    def _choose_format(self, at: ReadFrom, first: list[Line]) -> None:
        """The format of the generation `at` reads (`_known_format`), else told from its first
        lines."""
        known = self._known_format(at.checkpoint)
        if known is not None:
            self.format, self.detected = known
            return
        self.format, self.detected = None, False
        name = detect(line.data.decode("utf-8", "replace") for line in first if not line.problem)
        if name is not None:
            self.format, self.detected = FORMATS[name], True
            self._pending_notes.append(f"{self._reading}: read as {self.format.title}")

    async def position(self, at: ReadFrom, offset: int, line: int, **extra: Any) -> Any:
        """The checkpoint, with the generation's format when it was told from the lines."""
        if self.detected and self.format is not None:
            extra["format"] = self.format.name
        return await super().position(at, offset, line, **extra)

    async def read_file(self, at: ReadFrom) -> AsyncGenerator[Batch, None]:
        record: list[Line] = []
        chosen = False
        async for lines in at.reader.lines():
            if not chosen:
                self._choose_format(at, lines)
                chosen = True
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
            self._note_unmatched(batch)
            yield batch
        # The last record is complete when the input is (unchanged for a moment, rotated, a
        # stream at its end): a file still being written may add continuation lines to it.
        if record and at.final:
            batch = Batch()
            self._take(record, at.identity, batch)
            batch.position = await self.position(at, record[-1].end, record[-1].number)
            self._note_unmatched(batch)
            yield batch
        elif record:
            at.reader.held_back += 1  # the open record waits for the line after it

    def _note_unmatched(self, batch: Batch) -> None:
        if self.unmatched and self.format is not None:
            batch.notes.append(
                f"{self._reading}: {self.unmatched} records not of the {self.format.name} format"
                " kept as their text (--format plain reads every record so)"
            )
        self.unmatched = 0

    def _take(self, record: list[Line], identity: FileIdentity, batch: Batch) -> None:
        batch.records += 1
        try:
            self._convert(record, line_key(identity, record[0]), batch)
        except Exception as exc:  # one record never stops the file: a dead letter
            batch.dead_letters.append(self.dead(record[0], f"cannot read: {exc!r}"))

    def convert_again(
        self, line: Line, identity: FileIdentity, checkpoint: Any | None, batch: Batch
    ) -> None:
        if self.format is None:  # the format the record was read in
            self.format, self.detected = self._known_format(checkpoint) or (None, False)
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
        elif self.format is not None:
            fmt = self.format
            try:
                parsed = fmt.parse(text, self.context)
            except NotATime as exc:
                batch.dead_letters.append(self.dead(first, f"{fmt.name} format: {exc}", raw))
                return
            if parsed is not None:
                # A JSON line is its object (the text adds nothing); other formats keep it.
                payload = parsed.fields if fmt.name == "json" else {**payload, **parsed.fields}
                source_time = parsed.time_ns
            elif self.detected:
                self.unmatched += 1  # a banner, a line of another shape: kept as text
            else:
                reason = f"not a line of the {fmt.name} format (--format {fmt.name})"
                batch.dead_letters.append(self.dead(first, reason, raw))
                return
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
