"""Common ground of the adapters that read a file as lines (JSONL, CSV, plain logs): the source a
file belongs to (adapters/lineage.py), resuming from a stored position, finishing a generation
that moved away before the next one, reading pipes and stdin once as a stream, and counting
what was held back.

A position this adapter yields is the source's whole checkpoint: the generation being read at
its top level (or, reading a rotated file, that generation's entry in `rotated`), the earlier
generations, and the stem its default stream is named after (`name`)."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from evlog.eventlog import DeadLetter

from .base import MAX_RECORD_BYTES, RAW_LIMIT, Batch
from .checkpoints import FileCheckpoint, GenerationRecord
from .fields import FieldMap
from .lineage import (
    MAX_ROTATED,
    Placement,
    facts,
    generation_record,
    kept_changes,
    kept_name,
    rotated_entry,
    same_content,
    source_fields,
    source_name,
    with_rotated,
)
from .lines import (
    CHUNK_BYTES,
    DECOMPRESSION_ERRORS,
    SETTLE_S,
    STDIN,
    TAIL_BYTES,
    Facts,
    FileIdentity,
    Line,
    LineReader,
    Opened,
    ResumeAt,
    TranscodingReader,
    block_before,
    is_stream,
    line_digest,
    line_key,
    open_binary,
    open_stream,
    resume_opened,
    settled,
    stream_identity,
    tail_digest,
)

RETRY_NAMESPACE = "retry"
# A one-shot read of a file changed in the last SETTLE_S waits this long at most for it to be
# quiet before it takes a last record that may still grow (else it is held back, said so).
QUIET_WAIT_MAX_S = 1.5
QUIET_POLL_S = 0.05

# How the name of a rotation compressed since it was read may end (found by decompressing).
COMPRESSED = (".gz", ".bz2", ".xz")
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
    """The name of the source first read at `path` (checkpoints and dead letters are filed
    under it; a file renamed later keeps its source: adapters/lineage.py): its real path."""
    if path == STDIN:
        return "stdin"
    try:
        if os.path.islink(path):
            return f"file:{path.resolve(strict=False)}"
        return f"file:{os.path.join(_real_directory(str(path.parent.absolute())), path.name)}"
    except OSError:
        return f"file:{path}"


@functools.lru_cache(maxsize=4096)
def _real_directory(directory: str) -> str:
    """A directory's real path (resolving every component costs a system call each; a watched
    directory's files ask it over and over)."""
    return os.path.realpath(directory)


@dataclass(frozen=True, slots=True)
class ReadFrom:
    """One read of one file: where it starts and the reader that yields its lines."""

    path: Path
    identity: FileIdentity
    line_no: int
    checkpoint: Any | None  # the record of the generation being read
    reader: LineReader
    slot: int | None = None  # which generation's record positions replace (None: the current)

    @property
    def final(self) -> bool:
        """The input has ended for good (a one-shot read of a quiet file, a file rotated away,
        a stream at its end): even a record without its end is taken."""
        return self.reader.take_tail


def end_of_last_line(f: BinaryIO) -> tuple[int, int]:
    """(byte offset just after the open file's last newline, lines before it): where a read
    that starts at the end (`--read-from end`) begins. Leaves the file at its start."""
    offset = lines = 0
    f.seek(0)
    while chunk := f.read(CHUNK_BYTES):
        n = chunk.count(b"\n")
        if n:
            lines += n
            offset = f.tell() - len(chunk) + chunk.rindex(b"\n") + 1
    f.seek(0)
    return offset, lines


def wait_quiet(path: Path, settle_s: float, most_s: float) -> float | None:
    """Wait (blocking) until the file has not changed for `settle_s`, at most `most_s`;
    returns the seconds waited, or None if it was still changing then."""
    started = time.monotonic()
    while True:
        if settled(path, settle_s):
            return time.monotonic() - started
        waited = time.monotonic() - started
        if waited >= most_s:
            return None
        try:
            age = time.time() - os.stat(path).st_mtime
        except OSError:
            return None
        time.sleep(min(max(settle_s - age, QUIET_POLL_S), most_s - waited))


def rotation_of(candidate: Path, path: Path) -> bool:
    """Whether `candidate` is named as a rotation of `path` is (`app.log.1`, `app-20240101.log`,
    `app.1.log`: the name's base and more, never the other way round): with the same inode, the
    file rewritten and then rotated away. An inode alone is no proof: another log's new file
    in the same directory may have taken a freed one."""
    base = path.name.split(".", 1)[0]
    return len(candidate.name) > len(path.name) and candidate.name.startswith(
        (f"{base}.", f"{base}-", f"{base}_")
    )


def where_current_went(path: Path, current: GenerationRecord) -> tuple[bool, Path | None]:
    """(whether `path` still holds the generation `current` was read from, and if not, where
    that generation's file is now, if it can be found).

    The path's own inode, grown: still here. Another inode at the path: the old one, if it is
    still there (where it was last read, or beside `path`), is a rotation, finished first;
    if it is gone, the same content in the new inode is the same file (an editor's rename over
    it). A path whose inode is the same but whose content is not (truncated, rewritten) is
    searched for by content (a copytruncate's copy, a compressed rotation); if the content is
    nowhere, the path's own read says why it starts over. Files are opened only as needed: a
    directory of many rotated files is not read whole for each rotation."""
    path = path.absolute()
    f = facts(path)
    if f is None:
        return True, None
    ident = (current.get("dev"), current.get("ino"))
    same_inode = (f.dev, f.ino) == ident
    if same_inode and same_content(f, current):
        return True, None

    @functools.cache
    def listing() -> list[os.DirEntry[str]]:  # listed only if needed
        try:
            return sorted(os.scandir(path.parent), key=lambda e: e.name)
        except OSError:
            return []

    def other(candidate: Path) -> Facts | None:
        g = facts(candidate)
        return None if g is None or (g.dev, g.ino) == (f.dev, f.ino) else g

    def by_inode() -> Iterator[Path]:
        yield from [Path(current["path"])] if current.get("path") else []
        yield from (Path(e.path) for e in listing() if e.inode() == current.get("ino"))

    if not same_inode:
        for candidate in by_inode():
            g = other(candidate)
            if g is None or (g.dev, g.ino) != ident:
                continue
            first_line = g.fingerprint == current.get("fingerprint") or not current.get("offset")
            if first_line or rotation_of(candidate, path):
                return False, candidate
        if same_content(f, current):
            return True, None
    if same_inode and _inode_at(path) != ident:
        # The path moved on while it was looked at (rotated again at once, or renamed away and
        # its successor not made yet): the generation's file is found by its inode under its
        # new name when that is looked at, and the read of the path, through one descriptor,
        # starts what is there then. Not a search of every rotated file by content.
        return True, None
    offset = int(current.get("offset") or 0)
    rotated = [Path(e.path) for e in listing() if rotation_of(Path(e.path), path)]
    rest = [Path(e.path) for e in listing() if not rotation_of(Path(e.path), path)]
    for candidate in [*rotated, *rest]:
        try:
            st = candidate.stat()
        except OSError:
            continue
        if st.st_size < min(offset, 64) or candidate.name.startswith("."):
            continue  # too short to hold what was read, even compressed
        g = other(candidate)
        if g is not None and same_content(g, current):
            return False, candidate
    return same_inode, None


def _inode_at(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class OnDisk:
    """Whether earlier generations of the lineage at `path` are still on disk: their file by
    inode (renamed on by each rotation: `app.log.1` -> `app.log.2`) where it was last read or
    beside `path`, or, compressed since, by content among the files named as rotations of
    `path`. Each directory is listed once per instance, and each compressed file sniffed once
    (blocking: use off the loop). An inode found is taken as the generation's file without
    reading it: a reused inode only keeps a record a little longer."""

    def __init__(self, path: Path) -> None:
        self.path = path.absolute()
        self._home = str(self.path.parent)
        self._inodes: dict[str, set[int]] = {}
        self._compressed: dict[str, list[Facts]] = {}

    def _list(self, directory: str) -> None:
        inodes: set[int] = set()
        compressed: list[Facts] = []
        try:
            entries = list(os.scandir(directory))
        except OSError:
            entries = []
        for e in entries:
            inodes.add(e.inode())
            if not e.name.endswith(COMPRESSED):
                continue
            candidate = Path(e.path)
            if rotation_of(candidate, self.path):
                f = facts(candidate)
                if f is not None:
                    compressed.append(f)
        self._inodes[directory], self._compressed[directory] = inodes, compressed

    def __call__(self, record: GenerationRecord) -> bool:
        where = record.get("path")
        if where:  # most often still where it was last read: one stat, no listing
            try:
                st = os.stat(where)
            except OSError:
                pass
            else:
                if (st.st_dev, st.st_ino) == (record.get("dev"), record.get("ino")):
                    return True
        dirs = [os.path.dirname(where), self._home] if where else [self._home]
        if dirs[0] == dirs[-1]:
            dirs = dirs[:1]
        for directory in dirs:
            if directory not in self._inodes:
                self._list(directory)
            if record.get("ino") in self._inodes[directory]:
                return True
        return any(
            f.fingerprint == record.get("fingerprint") and same_content(f, record)
            for d in dirs
            for f in self._compressed[d]
        )


class LineFileAdapter:
    name: str
    # Whether `--read-from end` can skip what a new file holds (a CSV needs its header).
    can_start_at_end = True

    def __init__(
        self,
        path: Path,
        fields: FieldMap | None = None,
        *,
        final: bool = True,
        placement: Placement | None = None,
    ) -> None:
        self.path = path
        self.fields = fields or FieldMap()
        self.final = final
        self.placement = placement or Placement(file_source(path))
        self.source = self.placement.source
        # The stem the source's stream is named after: the name it was first read under.
        self.stem = self.placement.name or stem(
            path
            if self.placement.kind in ("new", "own") or not source_name(self.source)
            else Path(source_name(self.source) or "")
        )
        self.default_stream = self.fields.default_stream(self.name, self.stem)
        # How long the file must be unchanged before its last record counts as finished, and
        # how long a read waits at most for that (0 under `evlog watch`, which comes back).
        self.settle_s = SETTLE_S
        self.encoding = self.fields.encoding  # None: UTF-8 (a byte-order mark is skipped)
        self.quiet_wait_s = QUIET_WAIT_MAX_S
        # The watcher saw the file shorter than what was read since (a copytruncate).
        self.shrunk = False
        self._reading = path  # the file being read: the old one while finishing a rotated file
        self._identity: FileIdentity | None = None  # of the read under way
        self._state: FileCheckpoint = {}  # the source's checkpoint as of the last position
        # The source's kept records (earlier generations stored apart from its checkpoint,
        # see adapters/lineage.py) by generation, as the caller found them in the log (not
        # changed in place: replaced); and the changes the next batch stores (None: forget).
        self.kept: dict[int, GenerationRecord] = {}
        self._kept_changes: dict[str, GenerationRecord | None] = {}
        # Remarks for the user, handed out with the next batch.
        note = self.placement.note
        self._pending_notes: list[str] = [f"{path}: {note}"] if note else []
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
        the record would have had when first read (or one made from the dead letter's id). A
        record longer than its dead letter kept is read whole from its file first, or left
        as it is (blocking: call off the loop)."""
        raw = letter["raw"] or b""
        tail = str(letter["position"]).rsplit(":", 1)[-1]  # "file:line"
        number = int(tail) if tail.isdigit() else 0
        self._identity = None
        batch = Batch()
        if len(raw) >= RAW_LIMIT:
            whole, why = self._whole_record(raw, letter.get("key"), checkpoint)
            if whole is None:
                batch.dead_letters.append(self.dead(Line(number, 0, len(raw), raw), why))
                return batch
            raw = whole
        line = Line(number, 0, len(raw), raw)
        retry = FileIdentity(0, 0, "", RETRY_NAMESPACE, seekable=False)
        try:
            self.convert_again(line, retry, checkpoint, batch)
        except Exception as exc:  # still unreadable: the dead letter stays
            batch.dead_letters.append(self.dead(line, f"cannot read: {exc!r}"))
        own = letter["key"] or f"deadletter:{letter['id']}"
        for event in batch.events:
            if event.key is not None and event.key.startswith(RETRY_NAMESPACE + ":"):
                event.key = own
        return batch

    def _whole_record(
        self, kept: bytes, key: str | None, checkpoint: Any | None
    ) -> tuple[bytes | None, str]:
        """The whole record a dead letter kept the first RAW_LIMIT bytes of: read again from
        its generation's file at the offset its key holds, and taken only if its first line
        hashes as the key says. (None, why) when it cannot be had."""
        cut = f"only the first {RAW_LIMIT} bytes of this record were kept"
        try:
            namespace, offset_hex, digest = str(key).split(":")
            generation, offset = int(namespace.rsplit(".", 1)[1]), int(offset_hex, 16)
        except (ValueError, IndexError):
            return None, f"{cut}, and nothing says where the rest is: not retried"
        if line_digest(kept) == digest:
            return kept, ""  # exactly RAW_LIMIT bytes long: it was whole
        state = cast(FileCheckpoint, checkpoint if isinstance(checkpoint, dict) else {})
        record = (
            generation_record(state)
            if int(state.get("gen", -1)) == generation
            else rotated_entry(state, generation)
        )
        where = Path(record["path"]) if record and record.get("path") else None
        if where is None:
            return None, f"{cut}, and its file is no longer known: not retried"
        try:
            with open_binary(where) as f:
                f.seek(offset)
                whole, first = self.frame_again(f)
        except (OSError, EOFError, *DECOMPRESSION_ERRORS) as exc:
            return None, f"{cut}, and {where} cannot be read again ({exc}): not retried"
        if whole is None or line_digest(first) != digest:
            return None, f"{cut}, and {where} no longer holds it at byte {offset}: not retried"
        return whole, ""

    def frame_again(self, f: BinaryIO) -> tuple[bytes | None, bytes]:
        """(the record that starts where `f` is, its first line): one line here, at most
        MAX_RECORD_BYTES; (None, b"") past that or at the end of the file."""
        data = f.readline(MAX_RECORD_BYTES + 1)
        if not data.endswith(b"\n") and len(data) > MAX_RECORD_BYTES:
            return None, b""
        line = data.rstrip(b"\n").removesuffix(b"\r")
        return (line, line) if data else (None, b"")

    def convert_again(
        self, line: Line, identity: FileIdentity, checkpoint: Any | None, batch: Batch
    ) -> None:
        """Turn one record's raw bytes (a dead letter's) into an event or a dead letter."""
        raise NotImplementedError

    def batches(self, checkpoint: Any | None) -> AsyncGenerator[Batch, None]:
        if is_stream(self.path):
            return self._read_stream()
        self._state = cast(FileCheckpoint, dict(checkpoint) if isinstance(checkpoint, dict) else {})
        rotated = self._state.get("rotated") or []
        if len(rotated) > MAX_ROTATED:  # stored whole by an earlier version: keep the older
            self._state["rotated"] = rotated[-MAX_ROTATED:]
            self._keep({int(e.get("gen", 0)): e for e in rotated[:-MAX_ROTATED]})
        if self.placement.kind == "rotated" and self.placement.generation is not None:
            return self._read_rotated(self.placement.generation)
        return self._read_lineage()

    async def _read_lineage(self) -> AsyncGenerator[Batch, None]:
        """The path's own lineage: when the path holds another file than the generation being
        read, that generation is finished first where it went (when it can be found), and
        remembered among the rotated ones; the path is then read as the next generation."""
        current = generation_record(self._state) if "offset" in self._state else None
        if current is not None:
            here, went = await asyncio.to_thread(where_current_went, self.path, current)
            if not here:
                if went is not None:
                    async with aclosing(self._read(went, None, rotated=True)) as batches:
                        async for batch in batches:
                            yield batch
                await self._next_generation()
        async with aclosing(self._read(self.path, None, rotated=False)) as batches:
            async for batch in batches:
                yield batch

    async def _read_rotated(self, generation: int) -> AsyncGenerator[Batch, None]:
        """An earlier generation found again (`app.log.1`, `app.log.1.gz`): read on from where
        it stopped."""
        async with aclosing(self._read(self.path, generation, rotated=False)) as batches:
            async for batch in batches:
                yield batch

    async def _next_generation(self, record: GenerationRecord | None = None) -> None:
        """The current generation moves to `rotated` (its file may turn up again, perhaps
        compressed, with a tail not yet read); the next read of the path starts the next."""
        current = record or generation_record(self._state)
        rest = source_fields(self._state)
        rest["rotated"], moved_out = with_rotated(self._state, current)
        changes = await asyncio.to_thread(kept_changes, self.kept, moved_out, OnDisk(self.path))
        self._keep(changes)
        rest["gen"] = int(current.get("gen", 0)) + 1
        self._state = rest

    def _keep(self, changes: dict[int, GenerationRecord | None]) -> None:
        """Apply changes (by generation; None: forgotten) to the kept records; the next batch
        stores them under their names."""
        if not changes:
            return
        kept = dict(self.kept)
        for generation, record in changes.items():
            if record is None:
                kept.pop(generation, None)
            else:
                kept[generation] = record
            self._kept_changes[kept_name(self.source, generation)] = record
        self.kept = kept

    def _generation(self, slot: int | None) -> GenerationRecord | None:
        if slot is None:
            return generation_record(self._state) if "gen" in self._state else None
        return rotated_entry(self._state, slot) or self.kept.get(slot)

    async def _read(
        self, path: Path, slot: int | None, *, rotated: bool
    ) -> AsyncGenerator[Batch, None]:
        """Read `path` as generation `slot` (None: the current one) from its record's offset.
        `rotated`: the file was replaced at its path, so it is finished: take its last record.
        A one-shot read of a file still changing waits (at most QUIET_WAIT_MAX_S) for it to be
        quiet, rather than hold its last record back."""
        waited: float | None = 0.0
        while True:
            outcome = _Pass()
            async with aclosing(self._pass(path, slot, rotated, outcome)) as batches:
                async for batch in batches:
                    yield batch
            if outcome.held_back and self.final and not outcome.take_tail and waited == 0.0:
                waited = None
                if self.quiet_wait_s > 0:
                    waited = await asyncio.to_thread(
                        wait_quiet, path, self.settle_s, self.quiet_wait_s
                    )
                if waited is not None:
                    self._pending_notes.append(
                        f"{path}: waited {waited:.1f} s for it to be quiet, then took its"
                        " last record"
                    )
                    continue  # read on from the last position, taking the tail now
            if outcome.held_back:
                why = (
                    f"the file changed in the last {self.settle_s:g} s; a later run takes it"
                    if self.final
                    else "waiting for the end of the record"
                )
                note = f"{path}: {outcome.held_back} record(s) held back, not finished: {why}"
                yield Batch(held_back=outcome.held_back, notes=[*self._take_notes(), note])
            elif self._pending_notes:
                yield Batch(notes=self._take_notes())
            return

    def _take_notes(self) -> list[str]:
        notes, self._pending_notes = self._pending_notes, []
        return notes

    def _open(
        self, path: Path, record: GenerationRecord | None, shrunk: bool, rotated: bool
    ) -> tuple[ResumeAt, bool, BinaryIO, bytes, int | None] | None:
        """In one thread hop, through one open descriptor: where to read from, whether the
        last record may be taken, the content positioned there, the bytes before that offset,
        and (--read-from end) how many lines were skipped. None: `path` is a generation being
        finished (`rotated`) and holds neither its inode nor its content any more (renamed
        on again meanwhile): it is left for its placement to find."""
        opened = Opened(path, self.placement.facts if path == self.path else None)
        try:
            at = resume_opened(opened, self.source, record, shrunk=shrunk)
            ours = record is not None and (opened.st.st_dev, opened.st.st_ino) == (
                record.get("dev"), record.get("ino")
            )  # fmt: skip
            if rotated and at.restarted and not ours:
                opened.close()
                return None
            skipped = None
            if (
                self.start_at_end
                and record is None
                and not at.identity.compressed
                and self.can_start_at_end
            ):
                offset, skipped = end_of_last_line(opened.raw)
                at = ResumeAt(at.identity, offset, skipped)
            quiet = time.time() - opened.st.st_mtime >= self.settle_s
            take_tail = rotated or (self.final and quiet)
            f = opened.content()
            if f is not opened.raw:
                opened.close()  # the decompressed stream reads a descriptor of its own
            before = b""
            if at.offset:
                f.seek(at.offset)
                if not at.identity.compressed:
                    start = max(0, at.offset - TAIL_BYTES)
                    before = os.pread(f.fileno(), at.offset - start, start)
            return at, take_tail, f, before, skipped
        except BaseException:
            opened.close()
            raise

    async def _pass(
        self, path: Path, slot: int | None, rotated: bool, outcome: _Pass
    ) -> AsyncGenerator[Batch, None]:
        """One read of `path` to its end (or its last complete record)."""
        self._reading = path
        record = self._generation(slot)
        shrunk = self.shrunk and slot is None and path == self.path
        opened = await asyncio.to_thread(self._open, path, record, shrunk, rotated)
        if opened is None:
            self._pending_notes.append(f"{path}: moved on before it could be finished")
            return
        at, take_tail, f, before, skipped = opened
        outcome.take_tail = take_tail
        read_any = False
        try:
            if at.restarted:
                if slot is not None:  # no longer the generation it was taken for: leave it
                    self._pending_notes.append(f"{path}: not read: {at.restarted}")
                    return
                await self._next_generation(record)
                self._pending_notes.append(
                    f"{path}: read from the start as new content: {at.restarted}"
                )
            if skipped is not None:
                self._pending_notes.append(
                    f"{path}: started at its end (--read-from end): {skipped} lines skipped"
                )
            elif self.start_at_end and record is None and not self.can_start_at_end:
                self._pending_notes.append(
                    f"{path}: read from the start: a {self.name} file needs its header"
                )
            plain = not at.identity.compressed
            reader = self.make_reader(
                f, at.offset, at.line, take_tail=take_tail, plain_file=plain, before=before
            )
            self._identity = at.identity
            current = self._generation(slot)
            read_from = ReadFrom(path, at.identity, at.line, current, reader, slot)
            async with aclosing(self.read_file(read_from)) as batches:
                async for batch in batches:
                    batch.notes = self._take_notes() + batch.notes
                    batch.kept, self._kept_changes = self._kept_changes, {}
                    read_any = True
                    yield batch
            if not read_any and self._moved(slot, at, path):
                # Nothing to read (an empty file), but remember this file: were it rotated
                # before the next run, that run could not know to finish it.
                position = await self.position(read_from, at.offset, at.line)
                kept, self._kept_changes = self._kept_changes, {}
                yield Batch(position=position, notes=self._take_notes(), kept=kept)
            outcome.held_back = reader.held_back
        finally:
            await asyncio.to_thread(f.close)

    def _moved(self, slot: int | None, at: ResumeAt, path: Path) -> bool:
        """Whether the checkpoint does not already say: this file, this generation, this
        offset, at this path."""
        record = self._generation(slot)
        if record is None or "offset" not in record:
            return True
        same = (record.get("ino"), record.get("gen", 0), record.get("offset"), record.get("path"))
        here = (at.identity.ino, at.identity.generation, at.offset, str(path.absolute()))
        return same != here or self._state.get("name") != self.stem

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

    async def position(
        self, at: ReadFrom, offset: int, line: int, **extra: Any
    ) -> FileCheckpoint | None:
        """The source's checkpoint after `line` lines at byte `offset` of the file `at` reads
        (`extra`: more of that generation's own state, e.g. a CSV's header), with the hash of
        the bytes before it (from the reader's memory, else read back from the file)."""
        if not at.identity.seekable:
            return None
        tail = at.reader.tail_at(offset)
        if tail is None:  # through the reader's own file, not its name (it may be rotated)
            block = await asyncio.to_thread(at.reader.block_before, offset)
            if block is None:
                block = await asyncio.to_thread(block_before, at.path, at.identity, offset)
            tail = tail_digest(block)
        record: GenerationRecord = {
            **at.identity.to_json(),
            "fingerprint": at.reader.fingerprint or at.identity.fingerprint,
            "offset": offset,
            "line": line,
            "tail": tail,
            "path": str(at.path.absolute()),
        }
        record.update(cast(GenerationRecord, extra))
        if at.slot is None:
            state = source_fields(self._state)
            state.update(record)
        else:
            rotated, moved_out = with_rotated(self._state, record, replace=at.slot)
            state = {**self._state, "rotated": rotated}
            if moved_out or at.slot in self.kept:  # read on a kept one: back in the checkpoint
                changes = await asyncio.to_thread(
                    kept_changes, self.kept, moved_out, OnDisk(self.path), back=at.slot
                )
                self._keep(changes)
        state["name"] = self.stem
        self._state = state
        return state.copy()

    def make_reader(
        self,
        f: BinaryIO,
        offset: int,
        line: int,
        *,
        take_tail: bool,
        plain_file: bool = False,
        before: bytes = b"",
    ) -> LineReader:
        """The reader of the open file from `offset`: lines here, as UTF-8 from the file's
        `--encoding` (a format that frames its records otherwise, JSON values, gives its
        own)."""
        if self.encoding is not None:
            return TranscodingReader(
                self.encoding, f, offset, line,
                take_tail=take_tail, plain_file=plain_file, before=before,
            )  # fmt: skip
        return LineReader(
            f, offset, line, take_tail=take_tail, plain_file=plain_file, before=before
        )

    def read_file(self, at: ReadFrom) -> AsyncGenerator[Batch, None]:
        """Batches from `at` to the end of the file (or its last complete record if not final)."""
        raise NotImplementedError


@dataclass(slots=True)
class _Pass:
    """One read of a file: whether it could take a last record, and what it left unread."""

    take_tail: bool = False
    held_back: int = 0
