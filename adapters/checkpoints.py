"""The typed records a source's checkpoint is made of: a file's generations, a repository's
refs and chain head. A checkpoint is a source's resume point, stored with the events it covers
(not SQLite's WAL checkpoint nor DuckDB's). It is stored as JSON, so these are TypedDicts: the
same dicts as ever, their fields named and typed for the code that reads them.
adapters/lineage.py says what a file source's generations are."""

from __future__ import annotations

from typing import Any, TypedDict


class GenerationRecord(TypedDict, total=False):
    """One generation of a file source as a checkpoint stores it (JSON): the file that was
    read (device, inode, hash of the first line) and which generation it is, how far it was
    read (byte offset, lines), the hash of the TAIL_BYTES before that offset, where the file
    was last read; a CSV's header and delimiter, a log's format when it was told from its
    lines. A generation nothing was read of yet may lack the offset and tail."""

    dev: int
    ino: int
    fingerprint: str
    gen: int
    offset: int
    line: int
    tail: str
    path: str
    header: list[str]
    delimiter: str
    format: str


class FileCheckpoint(GenerationRecord, total=False):
    """A file source's checkpoint: the generation being read at its top level, the earlier
    ones that moved away before they were known to be finished (`rotated`, newest last), the
    stem its default stream is named after, and the mapping it was read with (stored by
    adapters/ingest.py)."""

    rotated: list[GenerationRecord]
    name: str
    mapping: dict[str, Any]


class ChainHead(TypedDict, total=False):
    """How far the default branch's first-parent history was read: its ref and tip, the tip's
    position on the chain, and the epoch (one more each time the history was rewritten)."""

    ref: str
    tip: str
    pos: int
    epoch: int


class GitCheckpoint(TypedDict, total=False):
    """A repository's checkpoint: the sha of every ref read, the chain's head, the .mailmap
    blob and the way identities were resolved with it, how many updates were read, and the
    mapping it was read with (stored by adapters/ingest.py)."""

    refs: dict[str, str]
    head: ChainHead
    mailmap: str
    identities: str
    updates: int
    mapping: dict[str, Any]
