"""The adapter protocol: an async generator of batches, each with the position to resume from."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol

from evlog.eventlog import DeadLetter, EncodedEvents, NewEvent

from .checkpoints import GenerationRecord

# The largest record evlog reads, one limit for every format: a line (JSONL, logs), a CSV record
# (quoted newlines included) and a CSV field. A larger one is one dead letter, saying so.
MAX_RECORD_BYTES = 16 << 20
# Bytes of a bad record kept in its dead letter. A longer record is found again in its file by
# the position its key holds when it is retried (adapters/retry.py), never retried cut.
RAW_LIMIT = 65536


@dataclass(slots=True)
class Batch:
    """Events read from a source, the records that failed, and where the next read starts.

    The ingest driver appends `events`, `dead_letters` and `position` in one transaction, so a
    crash can never leave events without their checkpoint or a checkpoint past missing events."""

    events: list[NewEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    position: Any = None
    # Events already encoded (eventlog.encode_events), by a parsing process.
    encoded: EncodedEvents | None = None
    # Records of the source framed in this batch (counted where they are split off the input,
    # before conversion): each ends as an event or a dead letter, which the ingest checks.
    records: int = 0
    # Records left for a later run (an unfinished last line): set on a read's last batch.
    held_back: int = 0
    notes: list[str] = field(default_factory=list)  # one-line remarks for the user
    # Checkpoints stored under other names before this batch's (a file source's kept records,
    # see adapters/lineage.py), each written once rather than with every commit; None forgets.
    kept: dict[str, GenerationRecord | None] = field(default_factory=dict)


class Adapter(Protocol):
    """Reads one source. `source` names it in checkpoints and dead letters (stable across runs).
    Adapters whose events go to one stream (unless a record names its own) call it
    `default_stream`; Slack's go to one stream per channel."""

    name: str
    source: str

    def batches(self, checkpoint: Any | None) -> AsyncGenerator[Batch, None]:
        """Yield batches from where `checkpoint` (None: the beginning) left off."""
        ...


class InputError(Exception):
    """A user's input cannot be read at all (missing file, unknown format): one line, exit 1."""
