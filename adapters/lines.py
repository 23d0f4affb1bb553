"""Reading a file as complete lines from a byte offset, off the event loop, with file identity.

Shared by the line-oriented adapters (JSONL, CSV, plain logs). A position is the file identity
(device, inode, fingerprint of the first line) plus the byte offset after the last complete line,
so a resumed read knows whether the file grew, was truncated or was replaced."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import zlib
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

T = TypeVar("T")

CHUNK_BYTES = 1 << 20
MAX_LINE_BYTES = 8 << 20  # a longer line is dead-lettered, not loaded whole
FINGERPRINT_BYTES = 4096


@dataclass(slots=True, frozen=True)
class Line:
    number: int  # 1-based line number in the file
    offset: int  # byte offset of the line's start
    end: int  # byte offset just after its newline
    data: bytes  # without the trailing newline (and \r)
    too_long: bool = False
    error: str | None = None  # the input broke here (e.g. a truncated gzip stream)

    @property
    def problem(self) -> str | None:
        return self.error or ("line longer than the size limit" if self.too_long else None)


@dataclass(slots=True, frozen=True)
class FileIdentity:
    dev: int
    ino: int
    fingerprint: str  # hash of the first line, or of the first FINGERPRINT_BYTES if no newline yet

    def to_json(self) -> dict[str, Any]:
        return {"dev": self.dev, "ino": self.ino, "fingerprint": self.fingerprint}


def fingerprint(head: bytes) -> str:
    first = head.split(b"\n", 1)[0] if b"\n" in head else head
    return hashlib.blake2b(first, digest_size=8).hexdigest()


def identify(path: Path) -> FileIdentity:
    st = os.stat(path)
    try:
        with open_binary(path) as f:
            head = f.read(FINGERPRINT_BYTES)
    except (EOFError, OSError, zlib.error):
        with open(path, "rb") as raw:  # a broken gzip stream: fingerprint its raw bytes
            head = raw.read(FINGERPRINT_BYTES)
    return FileIdentity(st.st_dev, st.st_ino, fingerprint(head))


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def open_binary(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")  # type: ignore[return-value]


def resume_offset(path: Path, identity: FileIdentity, checkpoint: Any | None) -> tuple[int, int]:
    """(byte offset, lines before it) to resume from: 0 for a new, truncated or replaced file.

    A replaced file (new inode, e.g. after log rotation) is read from the start; lines it shares
    with the old one at the same offsets have the same keys and are not appended twice."""
    if not checkpoint:
        return 0, 0
    same_file = (
        checkpoint.get("dev") == identity.dev
        and checkpoint.get("ino") == identity.ino
        and checkpoint.get("fingerprint") == identity.fingerprint
    )
    if not same_file:
        return 0, 0
    offset = int(checkpoint.get("offset", 0))
    if not is_gzip(path) and os.path.getsize(path) < offset:
        return 0, 0  # truncated: the file was started over
    return offset, int(checkpoint.get("line", 0))


def rotated_from(path: Path, checkpoint: Any | None) -> Path | None:
    """The file this path used to be, if it was replaced (log rotation: renamed, a new file
    created in its place) and the old one is still beside it with lines not read yet."""
    if not checkpoint or "ino" not in checkpoint or is_gzip(path):
        return None
    st = os.stat(path)
    if (st.st_dev, st.st_ino) == (checkpoint.get("dev"), checkpoint.get("ino")):
        return None
    for entry in os.scandir(path.parent):
        if entry.inode() != checkpoint["ino"] or not entry.is_file(follow_symlinks=False):
            continue
        old = Path(entry.path)
        same = identify(old)
        if (same.dev, same.fingerprint) != (checkpoint.get("dev"), checkpoint.get("fingerprint")):
            return None
        return old if entry.stat().st_size > int(checkpoint.get("offset", 0)) else None
    return None


async def with_rotation(
    path: Path,
    checkpoint: Any | None,
    final: bool,
    read: Callable[[Path, Any | None, bool], AsyncGenerator[T, None]],
) -> AsyncGenerator[T, None]:
    """`read` the file at `path` from `checkpoint`; when it was replaced since, first finish
    the old file (to its current end, under its own identity), then read the new one."""
    old = await asyncio.to_thread(rotated_from, path, checkpoint)
    if old is not None:
        async with aclosing(read(old, checkpoint, True)) as batches:
            async for batch in batches:
                yield batch
        checkpoint = None
    async with aclosing(read(path, checkpoint, final)) as batches:
        async for batch in batches:
            yield batch


def position(identity: FileIdentity, offset: int, line: int) -> dict[str, Any]:
    return {**identity.to_json(), "offset": offset, "line": line}


async def read_lines(
    path: Path, offset: int, line_number: int, *, final: bool = True
) -> AsyncGenerator[list[Line], None]:
    """Yield lists of complete lines from `offset`. A last line without a newline is yielded only
    when `final` (a one-shot ingest of a finished file); a watcher passes final=False so a line
    still being written waits for its newline."""
    f = await asyncio.to_thread(open_binary, path)
    try:
        if offset:
            await asyncio.to_thread(f.seek, offset)
        pending = b""
        pending_start = offset
        skipping = False  # inside an over-long line: drop bytes until its newline
        while True:
            try:
                chunk = await asyncio.to_thread(f.read, CHUNK_BYTES)
            except (EOFError, OSError, zlib.error) as exc:
                # A corrupt or truncated compressed stream: what came before it stands; the
                # break itself is one dead letter (or, while the file may still grow, a wait).
                if final:
                    end = pending_start + len(pending)
                    yield [Line(line_number + 1, pending_start, end, pending, error=f"{exc}")]
                return
            if not chunk:
                break
            buf = pending + chunk
            lines: list[Line] = []
            start = 0
            while True:
                nl = buf.find(b"\n", start)
                if nl < 0:
                    break
                line_number += 1
                data = buf[start:nl]
                if data.endswith(b"\r"):
                    data = data[:-1]
                begin = pending_start + start
                if skipping:
                    lines.append(Line(line_number, begin, pending_start + nl + 1, b"", True))
                    skipping = False
                else:
                    lines.append(Line(line_number, begin, pending_start + nl + 1, data))
                start = nl + 1
            pending_start += start
            pending = buf[start:]
            if len(pending) > MAX_LINE_BYTES:
                skipping = True
                pending_start += len(pending)
                pending = b""
            if lines:
                yield lines
        if final and (pending or skipping):
            line_number += 1
            end = pending_start + len(pending)
            yield [Line(line_number, pending_start, end, pending, skipping)]
    finally:
        await asyncio.to_thread(f.close)


def line_key(identity: FileIdentity, line: Line) -> str:
    """Idempotency key of a line: the file's fingerprint and the line's offset and content, so a
    copy of the same file (or a re-read after a lost checkpoint) appends nothing."""
    digest = hashlib.blake2b(line.data, digest_size=6).hexdigest()
    return f"{identity.fingerprint}:{line.offset:012x}:{digest}"
