"""Reading one path into the log, the one way `evlog ingest` and `evlog watch` both do it: plan
how the path is read (its adapter and mapping, and for a regular file which source and
generation its content is), tune the adapter for the caller (a one-shot read or a watcher's),
ingest it, and keep the index of file sources up to date. What a path turned out to be comes
back as a `PathRead`: read (with its stats), of no known format, unreadable, or a copy of a
file read where it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evlog.eventlog.store import LogStore

from . import mapping
from .base import Adapter, InputError
from .ingest import IngestStats, OnBatch, WrittenClock, ingest_source
from .lineage import Placement, SourceIndex
from .linefile import LineFileAdapter
from .registry import UnknownFormat


@dataclass(frozen=True, slots=True)
class Tuning:
    """How a read behaves beyond its mapping (a file adapter's; other adapters ignore it)."""

    start_at_end: bool = False  # a file never read before: from its end (--read-from end)
    settle_s: float | None = None  # quiet this long before a last record counts (None: default)
    # and for the log adapter, whose last record may go on in continuation lines
    multiline_settle_s: float | None = None
    quiet_wait_s: float | None = None  # how long a read waits for that (0: come back later)
    shrunk: bool = False  # the file was seen shorter than when last read (truncated)

    def apply(self, adapter: Adapter) -> float | None:
        """Tune `adapter`; returns the settle time it now has (None: not a file adapter)."""
        if not isinstance(adapter, LineFileAdapter):
            return None
        adapter.start_at_end = adapter.start_at_end or self.start_at_end
        adapter.shrunk = adapter.shrunk or self.shrunk
        settle_s = self.multiline_settle_s if adapter.name == "log" else None
        if settle_s is None:
            settle_s = self.settle_s
        if settle_s is not None:
            adapter.settle_s = settle_s
        if self.quiet_wait_s is not None:
            adapter.quiet_wait_s = self.quiet_wait_s
        return adapter.settle_s


@dataclass(slots=True)
class PathRead:
    """What became of one path: `kind` "read" (with `stats`), "unknown" (no adapter knows
    its format), "failed" (it cannot be read: `error`), "copy" (the same content as a file
    read where it is: not read, `placement` says which) or "wait" (new, but it starts as a
    generation read before does: not read until it is quiet, see `read_path`'s `hold_kin`)."""

    path: Path
    kind: Literal["read", "unknown", "failed", "copy", "wait"]
    stats: IngestStats | None = None
    error: str | None = None
    placement: Placement | None = None
    source: str | None = None  # the source it was read as
    settle_s: float | None = None  # a file adapter's settle time, as tuned
    before: Any = None  # the source's checkpoint before this read
    note: str | None = None  # how its mapping was chosen, when there is something to say


async def read_path(
    log: LogStore,
    path: Path,
    wanted: dict[str, Any],
    index: SourceIndex,
    *,
    remap: bool = False,
    copies: str = "settle",
    tuning: Tuning = Tuning(),
    on_batch: OnBatch | None = None,
    written: WrittenClock | None = None,
    hold_kin: bool = False,
) -> PathRead:
    """Read `path` into `log` (see the module's docstring). `copies` as mapping.plan takes it;
    `written`: when each batch's records were written (a watcher's clock), if known.
    `hold_kin` (a watcher, for a file written just now): a new file that starts as a generation
    read before does is not read yet ("wait"): a copy or a compressed rotation still being
    written is that generation's content cut short, and read as new it would be read twice."""
    try:
        planned = await mapping.plan(log, path, wanted, remap=remap, index=index, copies=copies)
    except UnknownFormat as exc:
        return PathRead(path, "unknown", error=str(exc))
    except InputError as exc:
        return PathRead(path, "failed", error=str(exc))
    adapter = planned.adapter
    placement = planned.placement
    if hold_kin and placement is not None and placement.kind in ("new", "own") and placement.kin:
        return PathRead(path, "wait", placement=placement, source=adapter.source)
    if not planned.reads:
        return PathRead(path, "copy", placement=planned.placement, source=adapter.source)
    settle_s = tuning.apply(adapter)
    before = index.checkpoint(adapter.source)
    stats = await ingest_source(
        log, adapter, mapping=planned.mapping.to_json(), on_batch=on_batch, written=written
    )
    for name, record in stats.kept.items():
        index.update(name, record)
    if stats.checkpoint is not None:
        index.update(adapter.source, stats.checkpoint)
    return PathRead(
        path,
        "read",
        stats,
        stats.error,
        planned.placement,
        adapter.source,
        settle_s,
        before,
        planned.note,
    )
