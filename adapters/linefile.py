"""Common ground of the adapters that read a file as lines (JSONL, CSV, plain logs): the source
name, resuming from a stored position, and finishing a rotated file before its successor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import Batch
from .fields import FieldMap
from .lines import FileIdentity, identify, resume_offset, with_rotation


@dataclass(frozen=True, slots=True)
class ReadFrom:
    """Where a read of one file starts: after `line_no` lines, at byte `offset`."""

    path: Path
    identity: FileIdentity
    offset: int
    line_no: int
    checkpoint: Any | None
    final: bool  # read a last line without a newline too (the file is not growing)


class LineFileAdapter:
    name: str

    def __init__(self, path: Path, fields: FieldMap | None = None, *, final: bool = True) -> None:
        self.path = path
        self.fields = fields or FieldMap()
        self.final = final
        self.source = f"file:{path.resolve()}"
        self._reading = path  # the file being read: the old one while finishing a rotated file

    def batches(self, checkpoint: Any | None) -> AsyncGenerator[Batch, None]:
        return with_rotation(self.path, checkpoint, self.final, self._read)

    async def _read(
        self, path: Path, checkpoint: Any | None, final: bool
    ) -> AsyncGenerator[Batch, None]:
        self._reading = path
        identity = await asyncio.to_thread(identify, path)
        offset, line_no = resume_offset(path, identity, checkpoint)
        read = self.read_file(ReadFrom(path, identity, offset, line_no, checkpoint, final))
        async with aclosing(read) as batches:
            async for batch in batches:
                yield batch

    def read_file(self, at: ReadFrom) -> AsyncGenerator[Batch, None]:
        """Batches from `at` to the end of the file (or its last complete line if not final)."""
        raise NotImplementedError
