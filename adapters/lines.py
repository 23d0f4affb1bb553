"""Reading a file as complete lines from a byte offset, off the event loop, and knowing where to
resume: shared by the line-oriented adapters (JSONL, CSV, plain logs).

A position is the file's identity (device, inode, fingerprint of its first line), the byte offset
after the last complete record, a hash of the bytes just before that offset, and the file's
*generation*. A resumed read continues only when the file still holds the same bytes before the
offset (it grew); a truncated, rewritten or replaced file is read from its start as a new
generation. Keys without a key field are the source, the generation and the byte offset (plus
the content), so two files that share lines, or a log that repeats its banner after a rotation,
never lose a record as a "duplicate", while a re-read of the same bytes appends nothing.

Pipes, FIFOs and stdin cannot be re-read: they are read once as a stream, with keys unique to
the run and no resume point."""

from __future__ import annotations

import asyncio
import bz2
import gzip
import hashlib
import lzma
import os
import re
import stat
import sys
import time
import uuid
import zlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from .base import MAX_RECORD_BYTES
from .checkpoints import GenerationRecord

CHUNK_BYTES = 1 << 20
MAX_LINE_BYTES = MAX_RECORD_BYTES  # a longer line is dead-lettered, not loaded whole
FINGERPRINT_BYTES = 4096
TAIL_BYTES = 4096  # the block before a checkpoint's offset that must be unchanged to resume
# A last line without a newline is taken only once its file has not changed for this long:
# before that it may be a line still being written (held back, taken by a later run).
SETTLE_S = 1.0
BOM = b"\xef\xbb\xbf"
STDIN = Path("-")


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
    """Which file, and which generation of its content, a read is of. `namespace` prefixes the
    keys of its records: the source and the generation (or, for a stream, the run)."""

    dev: int
    ino: int
    fingerprint: str  # hash of the first line, or of the first FINGERPRINT_BYTES if no newline yet
    namespace: str
    generation: int = 0
    seekable: bool = True
    compression: str | None = None  # "gzip", "bzip2" or "xz": offsets are in the content

    @property
    def compressed(self) -> bool:
        return self.compression is not None

    def to_json(self) -> GenerationRecord:
        return {
            "dev": self.dev,
            "ino": self.ino,
            "fingerprint": self.fingerprint,
            "gen": self.generation,
        }


@dataclass(slots=True, frozen=True)
class ResumeAt:
    """Where a read starts: after `line` lines at byte `offset` of generation `identity`."""

    identity: FileIdentity
    offset: int
    line: int
    restarted: str | None = None  # why an existing checkpoint was not continued


def fingerprint(head: bytes) -> str:
    first = head.split(b"\n", 1)[0] if b"\n" in head else head
    return hashlib.blake2b(first, digest_size=8).hexdigest()


def tail_digest(block: bytes) -> str:
    return hashlib.blake2b(block, digest_size=8).hexdigest()


def source_namespace(source: str) -> str:
    return hashlib.blake2b(source.encode(), digest_size=6).hexdigest()


def generation_namespace(source: str, generation: int) -> str:
    """The key prefix of a file's records: its source and the generation of its content."""
    return f"{source_namespace(source)}.{generation}"


def is_stream(path: Path) -> bool:
    """stdin, a pipe, a FIFO or a character device: bytes that can be read only once."""
    if path == STDIN:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@dataclass(frozen=True, slots=True)
class Facts:
    """What identifies a regular file's content: where it is, and how it starts."""

    path: Path
    dev: int
    ino: int
    size: int
    mtime_ns: int
    compression: str | None
    fingerprint: str
    first_line_whole: bool = True  # the head holds a whole first line (else it is still coming)


def facts(path: Path) -> Facts | None:
    """The facts of a regular file (None: gone, or not a regular file)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        kind, head = sniff(path)
    except (OSError, *DECOMPRESSION_ERRORS):
        return None
    whole = b"\n" in head or len(head) >= FINGERPRINT_BYTES
    return Facts(
        path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, kind, fingerprint(head), whole
    )


def identify(
    path: Path, source: str, generation: int = 0, known: Facts | None = None
) -> FileIdentity:
    """The identity of a regular file (raises OSError if it vanished); `known`: its facts as
    sniffed a moment ago, used if it has not changed since."""
    st = os.stat(path)
    ns = generation_namespace(source, generation)
    if known is not None and (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) == (
        known.dev, known.ino, known.size, known.mtime_ns
    ):  # fmt: skip
        return FileIdentity(
            st.st_dev, st.st_ino, known.fingerprint, ns, generation, True, known.compression
        )
    kind, head = sniff(path)
    return FileIdentity(st.st_dev, st.st_ino, fingerprint(head), ns, generation, True, kind)


def sniff(path: Path) -> tuple[str | None, bytes]:
    """(how the file is compressed, the first FINGERPRINT_BYTES of its content without a
    byte-order mark), with one open of a plain file."""
    with open(path, "rb") as f:
        raw = f.read(FINGERPRINT_BYTES)
    kind = _kind(raw)
    head = raw if kind is None else head_of(path, kind)
    return kind, head[len(BOM) :] if head.startswith(BOM) else head


def head_of(path: Path, kind: str | None) -> bytes:
    """The first FINGERPRINT_BYTES of the file's content (decompressed), without a byte-order
    mark. A broken compressed stream gives its raw bytes."""
    try:
        with open_content(path, kind) as f:
            head = f.read(FINGERPRINT_BYTES)
    except (EOFError, OSError, zlib.error, lzma.LZMAError):
        with open(path, "rb") as raw:
            head = raw.read(FINGERPRINT_BYTES)
    return head[len(BOM) :] if head.startswith(BOM) else head


def stream_identity(source: str) -> FileIdentity:
    run = uuid.uuid4().hex[:10]
    return FileIdentity(0, 0, "", f"{source_namespace(source)}.run{run}", 0, seekable=False)


# Compressed files by their first bytes, as logrotate's `compress` (gzip, or its compresscmd
# bzip2 or xz) leaves them: read as their content, offsets counted in the content.
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"))
# bzip2: "BZh", the block size (1-9), then the first block's magic (pi in BCD): a text file
# that merely starts with "BZh" is text.
_BZIP2 = re.compile(rb"BZh[1-9]\x31\x41\x59\x26\x53\x59")
_OPENERS: dict[str, Callable[..., Any]] = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}
DECOMPRESSION_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)


def compression(path: Path) -> str | None:
    """ "gzip", "bzip2" or "xz" when the file starts as one does, else None."""
    with open(path, "rb") as f:
        return _kind(f.read(10))


def _kind(start: bytes) -> str | None:
    if _BZIP2.match(start):
        return "bzip2"
    return next((kind for magic, kind in _MAGIC if start.startswith(magic)), None)


def is_gzip(path: Path) -> bool:
    """Whether the file is compressed (gzip, bzip2 or xz): read as its content."""
    return compression(path) is not None


def open_content(path: Path, kind: str | None) -> BinaryIO:
    """The file's content: decompressed if `kind` says it is compressed."""
    return _OPENERS[kind](path, "rb") if kind else open(path, "rb")


def open_binary(path: Path) -> BinaryIO:
    return open_content(path, compression(path))


def open_stream(path: Path) -> BinaryIO:
    if path == STDIN:
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    return open(path, "rb")


def block_before(path: Path, identity: FileIdentity, offset: int) -> bytes:
    """The TAIL_BYTES of content before `offset` (decompressed up to it when compressed)."""
    return content_before(path, identity.compression, offset) or b""


def content_before(path: Path, kind: str | None, offset: int) -> bytes | None:
    """The TAIL_BYTES of the file's content before `offset`, or None when its content is
    shorter than that (a compressed file is decompressed up to the offset; a broken stream
    ends where it breaks)."""
    if kind is None:
        with open(path, "rb") as f:
            return _pread_before(f, offset)
    return _decompressed_before(lambda: open_content(path, kind), offset)


def _pread_before(f: BinaryIO, offset: int) -> bytes | None:
    """The TAIL_BYTES of a plain file's bytes before `offset` (None: it is shorter)."""
    start = max(0, offset - TAIL_BYTES)
    block = os.pread(f.fileno(), offset - start, start)
    return block if len(block) == offset - start else None


def _decompressed_before(opener: Callable[[], BinaryIO], offset: int) -> bytes | None:
    """The TAIL_BYTES of a compressed file's content before `offset`, decompressed from its
    start (None: the content is shorter; a broken stream ends where it breaks)."""
    start = max(0, offset - TAIL_BYTES)
    window = b""
    done = 0
    try:
        with opener() as f:
            while done < offset:
                chunk = f.read(min(CHUNK_BYTES, offset - done))
                if not chunk:
                    break
                done += len(chunk)
                window = (window + chunk)[-TAIL_BYTES:]
    except DECOMPRESSION_ERRORS:
        pass
    return window[len(window) - (offset - start) :] if done >= offset else None


def raw_head_digest(path: Path) -> str:
    """How evlog before content tails checked a compressed file: its first raw bytes."""
    with open(path, "rb") as f:
        return tail_digest(f.read(TAIL_BYTES))


def tail_matches(path: Path, kind: str | None, offset: int, tail: str) -> bool:
    """Whether the content before `offset` is the one a checkpoint's `tail` hashed. Compressed
    files checkpointed by an earlier evlog hashed their first raw bytes instead: either does."""
    block = content_before(path, kind, offset)
    if block is not None and tail_digest(block) == tail:
        return True
    return kind is not None and raw_head_digest(path) == tail


class Opened:
    """A regular file opened once: its identity, size, first line and the bytes before an
    offset are all read through this one descriptor, so a rename of the path in between (a
    rotation) can never mix two files' facts (one file's inode with another's content)."""

    def __init__(self, path: Path, known: Facts | None = None) -> None:
        self.path = path
        self.raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self.st = os.fstat(self.raw.fileno())
            same = known is not None and (
                self.st.st_dev,
                self.st.st_ino,
                self.st.st_size,
                self.st.st_mtime_ns,
            ) == (known.dev, known.ino, known.size, known.mtime_ns)
            if known is not None and same:
                self.compression, self.fingerprint = known.compression, known.fingerprint
            else:
                start = os.pread(self.raw.fileno(), FINGERPRINT_BYTES, 0)
                self.compression = _kind(start)
                head = start if self.compression is None else self._content_head()
                self.fingerprint = fingerprint(head[len(BOM) :] if head.startswith(BOM) else head)
        except BaseException:
            self.raw.close()
            raise

    def _stream(self) -> BinaryIO:
        """The content from its start, decompressed, over a descriptor of its own."""
        dup = os.fdopen(os.dup(self.raw.fileno()), "rb")
        dup.seek(0)
        return _OPENERS[self.compression](dup, "rb") if self.compression else dup

    def _content_head(self) -> bytes:
        try:
            with self._stream() as f:
                return f.read(FINGERPRINT_BYTES)
        except DECOMPRESSION_ERRORS:
            return os.pread(self.raw.fileno(), FINGERPRINT_BYTES, 0)

    def content(self) -> BinaryIO:
        """The content to read (the file itself, or its decompressed stream)."""
        return self._stream() if self.compression else self.raw

    def identity(self, source: str, generation: int) -> FileIdentity:
        ns = generation_namespace(source, generation)
        st = self.st
        return FileIdentity(
            st.st_dev, st.st_ino, self.fingerprint, ns, generation, True, self.compression
        )

    def content_before(self, offset: int) -> bytes | None:
        """The TAIL_BYTES of content before `offset` (None: the content is shorter)."""
        if self.compression is None:
            return _pread_before(self.raw, offset)
        return _decompressed_before(self._stream, offset)

    def tail_matches(self, offset: int, tail: str) -> bool:
        """As `tail_matches`, through this descriptor."""
        block = self.content_before(offset)
        if block is not None and tail_digest(block) == tail:
            return True
        if self.compression is None:
            return False
        return tail_digest(os.pread(self.raw.fileno(), TAIL_BYTES, 0)) == tail

    def close(self) -> None:
        self.raw.close()


def resume_opened(
    opened: Opened, source: str, checkpoint: Any | None, *, shrunk: bool = False
) -> ResumeAt:
    """Where to read an opened file from, given a generation's record (blocking).

    Continue at the stored offset only if the file still has the same first line and the same
    bytes just before the offset, and was not seen shorter than the offset since (`shrunk`:
    a copytruncate whose file grew back with the same bytes); otherwise read it from the start
    as the next generation."""
    if not checkpoint:
        return ResumeAt(opened.identity(source, 0), 0, 0)
    gen = int(checkpoint.get("gen", 0))
    same = opened.identity(source, gen)
    if "offset" not in checkpoint:  # "start the next generation" (after a rotation)
        return ResumeAt(same, 0, 0)
    offset = int(checkpoint["offset"])
    reason = None
    if offset == 0:
        pass  # nothing was read of this generation yet: nothing before the offset to check
    elif shrunk:
        reason = "it was seen shorter than what was read (truncated)"
    elif checkpoint.get("fingerprint") != same.fingerprint:
        reason = "its first line changed"
    elif not same.compressed and opened.st.st_size < offset:
        reason = "it is shorter than what was read (truncated)"
    elif "tail" in checkpoint and not opened.tail_matches(offset, checkpoint["tail"]):
        reason = "the bytes before the last position changed (rewritten)"
    if reason is None:
        return ResumeAt(same, offset, int(checkpoint.get("line", 0)))
    next_gen = generation_namespace(source, gen + 1)
    return ResumeAt(replace(same, generation=gen + 1, namespace=next_gen), 0, 0, reason)


def resume_at(
    path: Path,
    source: str,
    checkpoint: Any | None,
    *,
    shrunk: bool = False,
    known: Facts | None = None,
) -> ResumeAt:
    """`resume_opened` of the file at `path` (opened and closed again)."""
    opened = Opened(path, known)
    try:
        return resume_opened(opened, source, checkpoint, shrunk=shrunk)
    finally:
        opened.close()


def settled(path: Path, settle_s: float = SETTLE_S) -> bool:
    """True when the file has not been modified for `settle_s` (its last line is finished)."""
    try:
        return time.time() - os.stat(path).st_mtime >= settle_s
    except OSError:
        return False


class LineReader:
    """Complete lines of one open file from a byte offset, in lists (one per chunk read).

    A last line without a newline is yielded only when `take_tail` (the input is finished);
    otherwise it is left for a later read and counted in `held_back`. The raw bytes just before
    the newest offsets are kept, so a position can carry the hash of the block before it."""

    def __init__(
        self,
        f: BinaryIO,
        offset: int,
        line_number: int,
        *,
        take_tail: bool,
        plain_file: bool = False,
        before: bytes = b"",
    ) -> None:
        """`before`: the TAIL_BYTES before `offset`, read through the same open file (so a
        position's hash is of this file's bytes, even if another file takes its name)."""
        self._f = f
        self._offset = offset
        self._line_number = line_number
        self.take_tail = take_tail
        # A regular, uncompressed file: a read that reaches its size is its end for now, so
        # a small file takes one read (one thread hop), not one more to find nothing.
        self._plain_file = plain_file
        # Read from its start: the hash of the first line as read (the file's identity was
        # sniffed a moment before, when that line may not have been whole yet).
        self.fingerprint: str | None = None
        self._window = before  # raw bytes ending at self._window_end
        self._window_end = offset
        self.held_back = 0  # lines left unread at the end (0 or 1)

    def tail_at(self, offset: int) -> str | None:
        """Hash of the TAIL_BYTES before `offset`, if this reader still has them in memory."""
        start = self._window_end - len(self._window)
        want = max(0, offset - TAIL_BYTES)
        if want < start or offset > self._window_end:
            return None
        return tail_digest(self._window[want - start : offset - start])

    def block_before(self, offset: int) -> bytes | None:
        """The TAIL_BYTES before `offset`, read through this reader's own open file (None: a
        compressed file, which is read back by its content instead)."""
        if not self._plain_file:
            return None
        start = max(0, offset - TAIL_BYTES)
        return os.pread(self._f.fileno(), offset - start, start)

    def _read(self) -> tuple[bytes, bool]:
        """The next chunk, and whether it reached the end of the file as it is now."""
        f = self._f
        read1 = getattr(f, "read1", None)  # what is there now: a pipe does not wait to fill
        chunk = read1(CHUNK_BYTES) if read1 is not None else f.read(CHUNK_BYTES)
        at_end = self._plain_file and f.tell() >= os.fstat(f.fileno()).st_size
        return chunk, at_end

    async def lines(self) -> AsyncGenerator[list[Line], None]:
        line_number = self._line_number
        pending = b""
        pending_start = self._offset
        skipping = False  # inside an over-long line: drop bytes until its newline
        at_start = self._offset == 0
        at_end = False
        while not at_end:
            try:
                chunk, at_end = await asyncio.to_thread(self._read)
            except DECOMPRESSION_ERRORS as exc:
                # A corrupt or truncated compressed stream: what came before it stands; the
                # break itself is one dead letter (or, while the file may still grow, a wait).
                if self.take_tail:
                    end = pending_start + len(pending)
                    yield [Line(line_number + 1, pending_start, end, pending, error=f"{exc}")]
                else:
                    self.held_back = 1
                return
            if not chunk:
                break
            self._window = (self._window + chunk)[-(len(chunk) + TAIL_BYTES) :]
            self._window_end += len(chunk)
            buf = pending + chunk
            start = 0
            if at_start:
                if len(buf) < len(BOM) and b"\n" not in buf:
                    pending = buf  # too short to tell whether it opens with a byte-order mark
                    continue
                if buf.startswith(BOM):
                    start = len(BOM)  # a byte-order mark is not part of the first record
                head = buf[start : start + FINGERPRINT_BYTES]
                if b"\n" not in head and len(head) < FINGERPRINT_BYTES:
                    pending = buf  # the first line is not whole yet: it names the file
                    continue
                self.fingerprint = fingerprint(head)
                at_start = False
            lines: list[Line] = []
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
        if at_start and pending.startswith(BOM):
            pending = pending[len(BOM) :]
            pending_start += len(BOM)
        if pending or skipping:
            if self.take_tail:
                line_number += 1
                end = pending_start + len(pending)
                data = pending[:-1] if pending.endswith(b"\r") else pending  # as if CRLF-ended
                yield [Line(line_number, pending_start, end, data, skipping)]
            else:
                self.held_back = 1


def position(identity: FileIdentity, offset: int, line: int, tail: str | None) -> GenerationRecord:
    """A checkpoint: `tail` is the hash of the bytes before `offset` (None: not known)."""
    pos: GenerationRecord = {**identity.to_json(), "offset": offset, "line": line}
    if tail is not None:
        pos["tail"] = tail
    return pos


def line_key(identity: FileIdentity, line: Line) -> str:
    """Idempotency key of a record that has no key field: its source and generation, its byte
    offset and its content. A re-read of the same bytes appends nothing; another file, another
    generation of this one, or another run of a stream is another record."""
    return f"{identity.namespace}:{line.offset:x}:{line_digest(line.data)}"


def line_digest(data: bytes) -> str:
    """The content part of a line's key (a dead letter's retry checks a record re-read by it)."""
    return hashlib.blake2b(data, digest_size=6).hexdigest()


def check_encoding(name: str | None) -> str | None:
    """The codec's canonical name for `--encoding` (ValueError for an unknown one, or one whose
    lines cannot be found by their newline bytes: UTF-16 and UTF-32)."""
    if name is None:
        return None
    import codecs

    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ValueError(f"--encoding {name!r}: not an encoding Python knows") from None
    if info.name.startswith(("utf-16", "utf-32")):
        raise ValueError(
            f"--encoding {name}: lines of {info.name} are not found by their newline bytes;"
            f" convert the file first (iconv -f {info.name} -t utf-8)"
        )
    return info.name


class TranscodingReader(LineReader):
    """A LineReader whose lines come out as UTF-8, read from `encoding` (an ASCII-compatible
    one: the newline is the same byte). Offsets stay the file's own, so resume and rotation
    work as for any file; keys hash the UTF-8 text."""

    def __init__(self, encoding: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.encoding = encoding

    async def lines(self) -> AsyncGenerator[list[Line], None]:
        encoding = self.encoding
        async for lines in super().lines():
            out = []
            for line in lines:
                try:
                    data = line.data.decode(encoding).encode()
                except UnicodeDecodeError as exc:
                    why = f"not {encoding} at byte {exc.start} of the line: {exc.reason}"
                    out.append(replace(line, error=why))
                    continue
                out.append(replace(line, data=data))
            yield out
