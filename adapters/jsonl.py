"""JSONL / NDJSON adapter (gzip too): one event per line, the line itself stored as the payload."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from .base import Batch
from .fields import (
    MESSAGE_FIELDS_HINT,
    FieldMap,
)
from .lineage import Placement
from .linefile import LineFileAdapter, ReadFrom
from .lines import FileIdentity, Line, is_gzip, is_stream, line_key
from .offload import offload_threshold, offloaded
from .records import RecordMapper


class JsonlAdapter(LineFileAdapter):
    name = "jsonl"

    def __init__(
        self,
        path: Path,
        fields: FieldMap | None = None,
        *,
        final: bool = True,
        offload: bool = True,
        placement: Placement | None = None,
    ) -> None:
        super().__init__(path, fields, final=final, placement=placement)
        self.offload = offload
        self._records = RecordMapper(self.fields, self.default_stream)
        self._said_unnamed = False  # the hint about message fields is given once a read

    def batches(self, checkpoint: Any | None) -> AsyncGenerator[Batch, None]:
        """A large finished file is parsed in a child process (adapters/offload.py)."""
        if self.offload and self.final and _offloadable(self.path):
            make = partial(
                JsonlAdapter,
                self.path,
                self.fields,
                final=True,
                offload=False,
                placement=self.placement,
            )
            return offloaded(make, checkpoint)
        return super().batches(checkpoint)

    async def read_file(self, at: ReadFrom) -> AsyncGenerator[Batch, None]:
        identity = at.identity
        self._meta = b'{"source":' + orjson.dumps(str(at.path)) + b',"line":%d}'
        async for lines in at.reader.lines():
            last = lines[-1]
            batch = Batch(position=await self.position(at, last.end, last.number))
            read_ns = time.time_ns()  # the lines of a batch were read together
            for line in lines:
                if not line.problem and not line.data.strip():
                    continue  # a blank line is not a record
                batch.records += 1
                try:
                    self._convert(line, identity, batch, read_ns)
                except Exception as exc:  # one record never stops the file: a dead letter
                    batch.dead_letters.append(self.dead(line, f"cannot read: {exc!r}"))
            yield batch

    def convert_again(
        self, line: Line, identity: FileIdentity, checkpoint: Any | None, batch: Batch
    ) -> None:
        self._meta = b'{"source":' + orjson.dumps(str(self.path)) + b',"line":%d}'
        self._convert(line, identity, batch, time.time_ns())

    def _convert(self, line: Line, identity: FileIdentity, batch: Batch, read_ns: int) -> None:
        if line.problem:
            batch.dead_letters.append(self.dead(line, line.problem))
            return
        try:
            record = orjson.loads(line.data)
        except orjson.JSONDecodeError as exc:
            batch.dead_letters.append(self.dead(line, _why_not_json(line.data, exc)))
            return
        try:
            event, unnamed = self._records.event(
                record, line.data, line_key(identity, line), self._meta % line.number, read_ns,
                check_unnamed=not self._said_unnamed,
            )  # fmt: skip
        except ValueError as exc:
            batch.dead_letters.append(self.dead(line, str(exc)))
            return
        if unnamed and not self._said_unnamed:
            self._said_unnamed = True
            batch.notes.append(f"{self.where(line)}: {MESSAGE_FIELDS_HINT}")
        batch.events.append(event)


def _why_not_json(data: bytes, exc: Exception) -> str:
    """The reason a line is not JSON, in the user's terms (orjson says "surrogates not
    allowed ... char 0" for bytes that are not UTF-8)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        return (
            f"not UTF-8 at byte {bad.start}: {bad.reason} (a file in another encoding: give"
            " --encoding, e.g. latin-1 or cp1252)"
        )
    return f"malformed JSON: {exc}"


def _offloadable(path: Path) -> bool:
    try:
        return (
            not is_stream(path) and not is_gzip(path) and path.stat().st_size >= offload_threshold()
        )
    except OSError:
        return False
