"""Which source, and which generation of it, a file on disk is: a file's identity is its content,
not its name.

A file source is named once, `file:<the path it was first read at>`, and is a *lineage*: the
contents that path held one after another (a log rotated away and created anew, a file truncated
or rewritten), each a *generation*. Its checkpoint keeps the generation being read at its top
level (device, inode, hash of the first line, offset, hash of the content before the offset),
the path where that file was last seen, and the earlier generations that moved away before they
were known to be finished (`rotated`, newest last: MAX_ROTATED of them, and beyond that every
one whose file is still on disk, so that a log kept as 30 rotated files is never read again as
new files, up to MAX_KEPT).

A checkpoint is stored with every commit, so it holds only the newest MAX_ROTATED of `rotated`:
the older ones still on disk are *kept records*, stored apart under names of their own
(`kept_name`) once, when they leave the checkpoint, and forgotten when their file is gone
(`kept_changes`). The index and the adapter reading a source know both.

`place` looks at a file found under any name and says what it is:
- `own`: the file its own name's source is reading (same inode);
- `renamed`, `moved`: the generation some source is reading, under another name (same inode),
  or as another file with the same content (moved across file systems, a compressed copy of a
  file that is gone);
- `rotated`: an earlier generation of some source (`app.log.1`, `app-20240101.log`,
  `app.log.1.gz`), read on from where that generation stopped;
- `copy`: the same content as a file some source is still reading where it was: not read again
  while that file is there (re-placed when it changes: after a copytruncate, the copy holds the
  unread tail of the generation its original left behind). Only content of COPY_MIN_BYTES or
  more makes a copy: two small files that happen to be identical (one record each) are two
  sources, as nothing else tells them from two exports of the same data;
- `new`: content no source has read; with a name a source has, that source's next generation.

"The same content" means: the same hash of the first line, at least as long as the offset read
to, and the same hash of the TAIL_BYTES before that offset (decompressed first for .gz, .bz2
and .xz). Files that merely share a first line (a CSV header, a log banner) differ there. A file
whose bytes up to the offset are identical to a generation's is taken for that generation:
re-reading it under the generation's keys could only give duplicates."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from .checkpoints import FileCheckpoint, GenerationRecord
from .lines import Facts, facts, tail_matches

MAX_ROTATED = 16  # earlier generations a source remembers, whether or not still on disk
MAX_KEPT = 1024  # and at most, however many of their files are on disk still
COPY_MIN_BYTES = 4096  # identical content makes a copy from this much on (see `copy` above)
# The fields of one generation's record (the top level of a checkpoint, or a `rotated` entry).
GENERATION_FIELDS = GenerationRecord.__required_keys__ | GenerationRecord.__optional_keys__

KINDS = ("new", "own", "renamed", "moved", "rotated", "copy")


@dataclass(frozen=True, slots=True)
class Placement:
    """What a file found at `path` is (see the module's docstring for the kinds)."""

    source: str
    kind: str = "new"
    generation: int | None = None  # kind "rotated": the generation the file is
    name: str | None = None  # the stem its source's default stream is named after
    note: str | None = None  # for the user: what was recognised (said after the path)
    independent: Placement | None = None  # kind "copy": what the file would be on its own
    substantial: bool = False  # kind "copy": enough identical content to be the same file
    facts: Facts | None = None  # the file as it was placed (its read need not sniff it again)
    # kind "new" or "own", and perhaps content read before still being written (a copy, a
    # compression): its bytes are the start of a generation another source read, or (a file
    # never seen) it is compressed or its first line is not whole yet
    kin: bool = False

    @property
    def reads(self) -> bool:
        """Whether the file is read (a copy of a file still being read is not)."""
        return self.kind != "copy"


KEPT_PREFIX = "kept:"


def kept_name(source: str, generation: int) -> str:
    """The name a source's generation is stored under once it is a kept record."""
    return f"{KEPT_PREFIX}{generation}:{source}"


def is_kept(name: str) -> bool:
    """Whether a stored checkpoint's name is a kept record's (not a source a user knows)."""
    return name.startswith(KEPT_PREFIX)


def kept_of(name: str) -> tuple[str, int] | None:
    """(source, generation) of a kept record's name, or None for any other name."""
    if not name.startswith(KEPT_PREFIX):
        return None
    generation, _, source = name.removeprefix(KEPT_PREFIX).partition(":")
    return (source, int(generation)) if generation.isdigit() and source else None


def generation_record(checkpoint: FileCheckpoint) -> GenerationRecord:
    """The current generation's record: the top level of a checkpoint, without the source's
    own fields (mapping, rotated, name)."""
    return cast(GenerationRecord, {k: v for k, v in checkpoint.items() if k in GENERATION_FIELDS})


def source_fields(checkpoint: FileCheckpoint) -> FileCheckpoint:
    """The source's own fields of a checkpoint (mapping, rotated, name): its top level without
    the current generation's record."""
    return cast(FileCheckpoint, {k: v for k, v in checkpoint.items() if k not in GENERATION_FIELDS})


def records(checkpoint: FileCheckpoint) -> Iterator[tuple[int | None, GenerationRecord]]:
    """(slot, record) of every generation a checkpoint knows: None for the current one, else
    the generation number of a rotated one."""
    if "fingerprint" in checkpoint and "offset" in checkpoint:
        yield None, generation_record(checkpoint)
    for entry in checkpoint.get("rotated") or ():
        if isinstance(entry, dict) and "fingerprint" in entry and "offset" in entry:
            yield int(entry.get("gen", 0)), entry


def rotated_entry(checkpoint: FileCheckpoint, generation: int) -> GenerationRecord | None:
    for entry in checkpoint.get("rotated") or ():
        if isinstance(entry, dict) and int(entry.get("gen", -1)) == generation:
            return entry
    return None


def with_rotated(
    checkpoint: FileCheckpoint, record: GenerationRecord, *, replace: int | None = None
) -> tuple[list[GenerationRecord], list[GenerationRecord]]:
    """The `rotated` list with `record` in it (replacing generation `replace`'s entry, or added
    as the newest), cut to its newest MAX_ROTATED; and the entries cut off, oldest first (for
    `kept_changes`: forgotten while its file is still there, a generation would be read again
    as a new file, every record a duplicate)."""
    others = [
        e
        for e in checkpoint.get("rotated") or ()
        if isinstance(e, dict) and int(e.get("gen", -1)) not in (replace, record.get("gen"))
    ]
    out = [*others, record]
    return out[-MAX_ROTATED:], out[:-MAX_ROTATED]


def kept_changes(
    kept: dict[int, GenerationRecord],
    moved_out: list[GenerationRecord],
    on_disk: Callable[[GenerationRecord], bool],
    *,
    back: int | None = None,
) -> dict[int, GenerationRecord | None]:
    """How a source's kept records change, by generation (None: forgotten), when the
    generations `moved_out` leave its checkpoint and generation `back` returns to it (a
    rotated file read on): those moved out are kept while `on_disk` says their file is there;
    the oldest kept ones whose files are gone are forgotten, up to the first still there
    (rotation deletes the oldest first: one looked at or two per rotation, not every one), and
    the oldest past MAX_KEPT (blocking: call off the loop)."""
    changes: dict[int, GenerationRecord | None] = {}
    after = dict(kept)
    if back is not None and back in after:
        del after[back]
        changes[back] = None
    for entry in moved_out:
        if on_disk(entry):
            generation = int(entry.get("gen", 0))
            after[generation] = entry
            changes[generation] = entry
    for generation in sorted(after):
        if generation in changes:
            continue  # just moved out, and there
        if on_disk(after[generation]):
            break
        del after[generation]
        changes[generation] = None
    for generation in sorted(after)[:-MAX_KEPT]:
        changes[generation] = None
    return changes


def same_content(f: Facts, record: GenerationRecord) -> bool:
    """Whether `f` starts with the content a generation's record was read to. Of a generation
    nothing was read of yet (its first line may not even be whole), only the inode says."""
    offset = int(record.get("offset") or 0)
    tail = record.get("tail")
    if offset == 0 or tail is None:
        return (f.dev, f.ino) == (record.get("dev"), record.get("ino"))
    if record.get("fingerprint") != f.fingerprint:
        return False
    if f.compression is None and f.size < offset:
        return False
    try:
        return tail_matches(f.path, f.compression, offset, tail)
    except OSError:
        return False


def may_be_start_of(f: Facts, record: GenerationRecord) -> bool:
    """Whether a plain file shorter than what a generation was read to may be the start of that
    content, still being written (a copy under way): its bytes are the start of the file the
    generation was read from, or that file cannot be had to tell."""
    offset = int(record.get("offset") or 0)
    if f.size >= offset:
        return False  # long enough to have matched it, had it been that content
    where = record.get("path")
    original = facts(Path(where)) if where else None
    if original is None or (original.dev, original.ino) != (record.get("dev"), record.get("ino")):
        return True  # the original is gone: nothing to tell them apart by
    try:
        with open(f.path, "rb") as a, open(original.path, "rb") as b:
            return a.read(f.size) == b.read(f.size)
    except OSError:
        return True


def still_there(record: GenerationRecord) -> bool:
    """Whether the file a record was last read at is still there, as itself: the same inode
    still holding what was read (a file truncated by copytruncate is not: its copy is the
    generation now)."""
    where = record.get("path")
    if not where:
        return False
    f = facts(Path(where))
    if f is None or (f.dev, f.ino) != (record.get("dev"), record.get("ino")):
        return False
    return same_content(f, record)


def source_name(source: str) -> str | None:
    """The path a `file:` source was first read at."""
    return source.removeprefix("file:") if source.startswith("file:") else None


class SourceIndex:
    """The checkpoints of file sources, found by the content they read: the first-line hash of
    every generation each one knows, its kept records included. Built from the log's
    checkpoints once, then kept up to date by whoever appends (`update` after each ingest of a
    source, and for each kept record it stored or forgot)."""

    def __init__(self, checkpoints: dict[str, Any] | None = None) -> None:
        self._checkpoints: dict[str, FileCheckpoint] = {}
        self._kept: dict[str, dict[int, GenerationRecord]] = {}
        # Where each generation is, by the hash of its first line and by its inode (a
        # generation read nothing of yet has the first line of nothing; its file, grown and
        # renamed, is found by its inode): (source, slot, whether a kept record).
        self._by_fingerprint: dict[str, set[_At]] = {}
        self._by_inode: dict[tuple[Any, Any], set[_At]] = {}
        for source, checkpoint in (checkpoints or {}).items():
            self.update(source, checkpoint)

    @classmethod
    def of(cls, rows: list[dict[str, Any]]) -> SourceIndex:
        """From `LogStore.source_checkpoints()`."""
        return cls({r["source"]: r["position"] for r in rows})

    def checkpoint(self, source: str) -> FileCheckpoint | None:
        """`source`'s checkpoint as stored (without its kept records)."""
        return self._checkpoints.get(source)

    def kept(self, source: str) -> dict[int, GenerationRecord]:
        """`source`'s kept records, by generation (the index's own: not to be changed)."""
        return self._kept.get(source, {})

    def update(self, name: str, checkpoint: Any | None) -> None:
        """The checkpoint stored under `name` (a source's, or a kept record's) is now
        `checkpoint` (None: forgotten)."""
        kept = kept_of(name)
        if kept is not None:
            source, generation = kept
            entries = self._kept.setdefault(source, {})
            self._unindex((source, generation, True), entries.pop(generation, None))
            if isinstance(checkpoint, dict) and "fingerprint" in checkpoint:
                entries[generation] = cast(GenerationRecord, checkpoint)
                self._index((source, generation, True), entries[generation])
            return
        for slot, record in records(self._checkpoints.pop(name, {})):
            self._unindex((name, slot, False), record)
        if not isinstance(checkpoint, dict) or not name.startswith("file:"):
            return
        self._checkpoints[name] = cast(FileCheckpoint, checkpoint)
        for slot, record in records(self._checkpoints[name]):
            self._index((name, slot, False), record)

    def _index(self, at: _At, record: GenerationRecord) -> None:
        self._by_fingerprint.setdefault(record["fingerprint"], set()).add(at)
        self._by_inode.setdefault((record.get("dev"), record.get("ino")), set()).add(at)

    def _unindex(self, at: _At, record: GenerationRecord | None) -> None:
        if record is not None:
            self._by_fingerprint.get(record["fingerprint"], set()).discard(at)
            self._by_inode.get((record.get("dev"), record.get("ino")), set()).discard(at)

    def _record(self, at: _At) -> GenerationRecord | None:
        source, slot, kept = at
        if kept:
            return self._kept.get(source, {}).get(slot or 0)
        checkpoint = self._checkpoints.get(source, {})
        return generation_record(checkpoint) if slot is None else rotated_entry(checkpoint, slot)

    def candidates(
        self, fp: str, dev: int, ino: int
    ) -> list[tuple[str, int | None, GenerationRecord]]:
        """(source, slot, record) of every generation whose first line hashes to `fp`, or
        that was read from the inode (dev, ino); a generation both in its source's checkpoint
        and kept apart is given once, as in the checkpoint (the newer)."""
        found = self._by_fingerprint.get(fp, set()) | self._by_inode.get((dev, ino), set())
        out: dict[tuple[str, int | None], GenerationRecord] = {}
        for at in sorted(found, key=lambda a: (a[0], a[1] is not None, a[2], a[1] or 0)):
            record = self._record(at)
            if record is None or (at[0], at[1]) in out:
                continue
            if record["fingerprint"] == fp or (record.get("dev"), record.get("ino")) == (
                dev, ino
            ):  # fmt: skip
                out[at[0], at[1]] = record
        return [(source, slot, record) for (source, slot), record in out.items()]


_At = tuple[str, int | None, bool]


def place(path: Path, own_source: str, index: SourceIndex) -> Placement:
    """What the file at `path` is (blocking: stats and reads a few blocks; call off the loop).
    `own_source` is the name a source first read at `path` has."""
    own = index.checkpoint(own_source)
    try:
        st = os.stat(path)
    except OSError:
        return Placement(own_source, "own" if own else "new")
    if (
        own is not None
        and (st.st_dev, st.st_ino) == (own.get("dev"), own.get("ino"))
        and int(own.get("offset") or 0) > 0
    ):
        return Placement(own_source, "own")  # the live path: one stat, nothing read
    f = facts(path)
    if f is None:  # its start cannot be read (a compressed stream not yet whole, perhaps)
        return Placement(own_source, "own" if own else "new", kin=own is None)
    alone = Placement(own_source, "own" if own else "new", facts=f)
    found = [(s, slot, r, same_content(f, r)) for s, slot, r in index.candidates(
        f.fingerprint, f.dev, f.ino
    )]  # fmt: skip
    matches = [(s, slot, r) for s, slot, r, same in found if same]
    # Perhaps the start of another source's content still being written (see `kin`): a new
    # file, or a new file at its own name whose generation nothing was read of yet.
    partial = any(
        s != own_source and r["fingerprint"] == f.fingerprint and not same and may_be_start_of(f, r)
        for s, _, r, same in found
    )
    unsure = own is None and (f.compression is not None or not f.first_line_whole)
    if (partial or unsure) and not any(s != own_source for s, _, _ in matches):
        alone = Placement(own_source, alone.kind, facts=f, kin=True)
    # Content read first (a generation nothing was read of matches by its inode alone), then
    # the same inode, then a source's current generation, then the newest rotated one.
    matches.sort(
        key=lambda m: (not int(m[2].get("offset") or 0),
                       (f.dev, f.ino) != (m[2].get("dev"), m[2].get("ino")), m[1] is not None,
                       -(m[1] or 0))
    )  # fmt: skip
    for source, slot, record in matches:
        name = _name_of(source, index)
        first = source_name(source) or source
        if slot is not None:
            note = f"generation {slot} of {first} (rotated): read on from byte {record['offset']}"
            return Placement(source, "rotated", slot, name, note, facts=f)
        if source == own_source:
            return alone  # the same content, rewritten in place
        if (f.dev, f.ino) == (record.get("dev"), record.get("ino")):
            note = f"{first} renamed: read on in its stream from byte {record['offset']}"
            return Placement(source, "renamed", None, name, note, facts=f)
        if still_there(record):
            note = f"the same content as {record.get('path')}, which is read: not read again"
            size = int(record.get("offset") or 0)
            return Placement(source, "copy", None, name, note, alone, size >= COPY_MIN_BYTES, f)
        note = f"{first} moved here: read on in its stream from byte {record['offset']}"
        return Placement(source, "moved", None, name, note, facts=f)
    return alone


def _name_of(source: str, index: SourceIndex) -> str | None:
    checkpoint = index.checkpoint(source) or {}
    return checkpoint.get("name")
