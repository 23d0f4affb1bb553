"""The ingest operation (`Workspace.ingest`, `evlog ingest`): which sources the paths given
hold (directories walked, repositories named), each read into the log in turn by the one
reading loop (adapters/reading.py) that `evlog watch` uses too, optionally projected while it
reads, and the summary that proves the conservation law for the run."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from evlog.adapters import IngestStats
from evlog.eventlog.store import LogStore

from .errors import BadOption, EvlogError
from .failures import explain

if TYPE_CHECKING:
    from evlog.adapters import Batch
    from evlog.projector.registry import Catalog


class Workspace(Protocol):
    """What the operation needs of its workspace (evlog.workspace.Workspace)."""

    duckdb: Path
    debug: bool

    @property
    def log_target(self) -> str | Path: ...

    async def open_log(self, *, writable: bool = True) -> LogStore: ...

    def catalog(self) -> Catalog: ...


DEFAULT_MAX_DEAD_LETTER_RATIO = 0.5


@dataclass(slots=True)
class IngestOptions:
    """What `evlog ingest` takes beyond its paths. `mapping`: the mapping options (adapter,
    stream, key_field, pattern, ...: adapters/mapping.py), checked by `checked_mapping`."""

    mapping: dict[str, Any] = field(default_factory=dict)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ignore_older_than_s: float | None = None
    start_at_end: bool = False  # files never read before: from their end
    remap: bool = False  # read on with these options though a source was read with others
    project: bool = False  # bring the analytics up to date while reading
    # A source more of whose records than this share were dead-lettered fails the run: a wrong
    # pattern or time field must not look like success to a script.
    max_dead_letter_ratio: float = DEFAULT_MAX_DEAD_LETTER_RATIO


class Reporter(Protocol):
    """What a caller hears while the run goes (the CLI's progress bars and error lines)."""

    def source_started(self, path: Path) -> None: ...

    def batch_done(self, path: Path, batch: Batch, stats: IngestStats) -> None: ...

    def source_done(self, path: Path) -> None: ...

    def note(self, text: str) -> None: ...


class Quiet:
    """A Reporter that hears nothing (the Python API's default)."""

    def source_started(self, path: Path) -> None:
        pass

    def batch_done(self, path: Path, batch: Batch, stats: IngestStats) -> None:
        pass

    def source_done(self, path: Path) -> None:
        pass

    def note(self, text: str) -> None:
        pass


@dataclass(slots=True)
class IngestSummary:
    """A run: per source, what it read and where it went, and the whole run's totals."""

    sources: list[IngestStats]
    total: IngestStats
    skipped: list[tuple[Path, str]]  # found in directories and not read, with why
    too_old: list[Path]
    db: str
    max_dead_letter_ratio: float = DEFAULT_MAX_DEAD_LETTER_RATIO
    projected_to: int | None = None  # the analytics' position, when projected while reading
    projecting_failed: str | None = None  # why the analytics are behind, if they are

    @property
    def failed(self) -> list[IngestStats]:
        return [one for one in self.sources if one.error]

    @property
    def unaccounted(self) -> list[IngestStats]:
        """Sources whose records do not add up (a bug: said loudly, exit 1)."""
        return [one for one in self.sources if one.unaccounted]

    @property
    def mostly_dead(self) -> list[IngestStats]:
        """Sources more of whose records than `max_dead_letter_ratio` were dead-lettered."""
        ratio = self.max_dead_letter_ratio
        return [one for one in self.sources if one.read and one.dead_letters > ratio * one.read]

    @property
    def ok(self) -> bool:
        return not (self.failed or self.unaccounted or self.projecting_failed or self.mostly_dead)

    def commit_percentile_ns(self, q: float) -> int:
        lat = sorted(self.total.commit_latencies_ns)
        return lat[min(len(lat) - 1, int(len(lat) * q))] if lat else 0

    @property
    def events_per_second(self) -> float:
        t = self.total
        return t.appended / t.seconds if t.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        t = self.total
        return {
            "read": t.read,
            "appended": t.appended,
            "duplicates": t.duplicates,
            "dead_letters": t.dead_letters,
            "held_back": t.held_back,
            "unaccounted": t.unaccounted,
            "seconds": round(t.seconds, 4),
            "events_per_second": round(self.events_per_second),
            "commit_p50_ms": round(self.commit_percentile_ns(0.5) / 1e6, 3),
            "commit_p99_ms": round(self.commit_percentile_ns(0.99) / 1e6, 3),
            "db": self.db,
            "sources": [one.to_json() for one in self.sources],
            "mostly_dead_lettered": [one.source for one in self.mostly_dead],
            "skipped": [{"path": str(p), "reason": why} for p, why in self.skipped]
            + [{"path": str(p), "reason": "older than --ignore-older-than"} for p in self.too_old],
        }


def checked_mapping(**options: Any) -> dict[str, Any]:
    """The mapping options given, checked (a bad value is BadOption)."""
    from evlog.adapters import ADAPTERS, InputError, mapping
    from evlog.adapters.csvfile import delimiter_of
    from evlog.adapters.fields import check_time_format, time_zone
    from evlog.adapters.lines import check_encoding
    from evlog.adapters.logformats import check_format
    from evlog.adapters.whatsapp import check_date_order

    pattern = options.get("pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise BadOption(f"--pattern is not a valid regex: {exc}") from None
        if options.get("format") is not None:
            raise BadOption("--pattern and --format: give one (a pattern is a format of its own)")
    try:
        check_time_format(options.get("time_format"))
        check_format(options.get("format"))
        if options.get("encoding") is not None:
            options["encoding"] = check_encoding(options["encoding"])
        check_date_order(options.get("date_order"))  # also when no file is a WhatsApp export
        time_zone(options.get("tz"))
        delimiter_of(options.get("delimiter"))
    except (InputError, ValueError) as exc:
        raise BadOption(str(exc)) from None
    adapter = options.get("adapter")
    if adapter is not None and adapter not in ADAPTERS:
        raise BadOption(f"unknown adapter {adapter!r}; known: {', '.join(sorted(ADAPTERS))}")
    try:
        return mapping.given(**options)
    except ValueError as exc:
        raise BadOption(str(exc)) from None


async def ingest_paths(
    ws: Workspace, paths: list[Path], opts: IngestOptions, reporter: Reporter | None = None
) -> IngestSummary:
    """Read `paths` into the workspace's log (see the module's docstring). A source that cannot
    be read is reported in its stats and the others go on; a file of no known format found in
    a directory is skipped, not failed."""
    from evlog.adapters.selection import Selection, files_under

    hear = reporter or Quiet()
    opts = replace(opts, mapping=checked_mapping(**opts.mapping))
    selection = Selection(opts.include, opts.exclude, opts.ignore_older_than_s)
    missing = [p for p in paths if str(p) != "-" and not p.exists()]
    if paths and len(missing) == len(paths):  # nothing to read: no log file made for nothing
        raise EvlogError(f"{missing[0]}: no such file or directory")
    as_repo = opts.mapping.get("adapter") == "git"
    # Directories are read recursively, unless one was named as a repository (--adapter git).
    walked = [p for p in paths if str(p) != "-" and p.exists() and not as_repo]
    found = await asyncio.to_thread(files_under, walked, selection)
    named = {p for p in paths if not p.is_dir() or as_repo}
    sources = [p for p in paths if p not in walked] + found.files  # stdin, missing: reported
    project = opts.project
    if project and is_served(ws.duckdb):
        hear.note(f"a follower is projecting into {ws.duckdb}: it brings the analytics up to date")
        project = False
    summary = IngestSummary([], IngestStats(source="*"), list(found.skipped), found.too_old,
                            str(ws.log_target), opts.max_dead_letter_ratio)  # fmt: skip
    await _read_all(ws, sources, named, opts, project, summary, hear)
    for d in walked:
        if d.is_dir() and not any(_within(f, d) for f in [*found.files, *found.too_old]):
            chosen = opts.include or opts.exclude
            let_through = " that --include/--exclude let through" if chosen else ""
            summary.sources.append(
                IngestStats(
                    source=str(d),
                    error=f"{d}: no files to read in it (and not a git repository){let_through}",
                )
            )
    for one in summary.sources:
        summary.total.merge(one)
    summary.total.seconds = sum(one.seconds for one in summary.sources)
    return summary


async def _read_all(
    ws: Workspace,
    paths: list[Path],
    named: set[Path],
    opts: IngestOptions,
    project: bool,
    summary: IngestSummary,
    hear: Reporter,
) -> None:
    from evlog.adapters.lineage import SourceIndex
    from evlog.adapters.reading import Tuning, read_path

    appended = asyncio.Event()

    async def read_sources(log: LogStore) -> None:
        index = SourceIndex.of(await log.source_checkpoints())
        tuning = Tuning(start_at_end=opts.start_at_end)
        for path in paths:
            hear.source_started(path)

            def on_batch(batch: Batch, stats: IngestStats, path: Path = path) -> None:
                appended.set()
                hear.batch_done(path, batch, stats)

            done = await read_path(
                log, path, opts.mapping, index, remap=opts.remap, tuning=tuning, on_batch=on_batch
            )
            hear.source_done(path)
            if done.kind == "unknown" and path not in named:
                summary.skipped.append((path, "unknown format (--adapter, or --exclude it)"))
            elif done.kind in ("unknown", "failed"):
                summary.sources.append(IngestStats(source=str(path), error=done.error))
            elif done.kind == "copy":
                note = done.placement.note if done.placement else None
                summary.skipped.append((path, note or "a copy of a file read"))
            elif done.stats is not None:
                if done.note:
                    done.stats.notes.insert(0, done.note)
                summary.sources.append(done.stats)

    async with await ws.open_log() as log:
        if project:
            await _read_while_projecting(ws, log, read_sources, appended, summary, hear)
        else:
            await read_sources(log)


async def _read_while_projecting(
    ws: Workspace,
    log: LogStore,
    read: Callable[[LogStore], Awaitable[None]],
    appended: asyncio.Event,
    summary: IngestSummary,
    hear: Reporter,
) -> None:
    """`read(log)` with a projector keeping up alongside. If projecting fails once everything
    is read, the events are appended and only the analytics are behind: the summary says so."""
    from evlog.projector import Projector

    catalog = await asyncio.to_thread(ws.catalog)
    for line in catalog.problems:
        hear.note(f"evlog: projection refused: {line}")
    read_all = False
    try:
        async with (
            await Projector.open(log, ws.duckdb, catalog.projections, flush_every=0) as projector,
            projector.keeping_up(appended),
        ):
            await read(log)
            read_all = True
    except Exception as exc:
        if not read_all or ws.debug:
            raise
        summary.projecting_failed = (
            f"{ws.duckdb} was not brought up to date: {explain(exc)}. Every event read is in"
            " the log: `evlog project` applies them"
        )
        return
    summary.projected_to = projector.position


def is_served(duckdb: Path) -> bool:
    """A follower serves (and projects into) this DuckDB file."""
    from . import analytics

    return analytics.serving(duckdb) is not None


def _within(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents
