"""The application: a `Workspace` is one log and its analytics (where they are, how durable,
which projections), and every evlog operation is one call on it, as every sqlite-utils command
is one call of its Python API. The CLI (evlog/cli.py) parses options, calls one of these and
renders the result; a program does the same without the CLI:

    from evlog.workspace import Workspace
    ws = Workspace.at("events.db")
    summary = ws.ingest(["inbox/"])          # IngestSummary: read = appended + ... (the law)
    ws.project()                             # the analytics brought up to date
    rows = ws.query("SELECT count(*) FROM messages").rows

Errors are `evlog.errors.EvlogError` (one line each). The blocking methods run their own event
loop; from async code, await the `*_async` forms."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evlog.eventlog.target import Durability

from .errors import BadOption
from .paths import DEFAULT_DB, duckdb_path_for

if TYPE_CHECKING:
    from evlog.adapters.fields import FieldMap
    from evlog.adapters.retry import RetryStats
    from evlog.eventlog.store import LogStore
    from evlog.projector import Progress, QueryResult
    from evlog.projector.registry import Catalog

    from .ingesting import IngestOptions, IngestSummary, Reporter
    from .live.exposure import Exposure
    from .live.projection_files import ProjectionFiles
    from .serve.server import ServeOptions


@dataclass(slots=True)
class Workspace:
    """A log (the SQLite file `db`, or a JetStream URL `log`) and its DuckDB analytics."""

    db: Path
    duckdb: Path
    durability: Durability = Durability.NORMAL
    projection_specs: list[str] = field(default_factory=list)
    log: str | None = None  # a nats:// URL; None: the SQLite file at `db`
    debug: bool = False  # failures keep their traceback (no one-line summary of them)

    @classmethod
    def at(
        cls,
        db: str | Path = DEFAULT_DB,
        *,
        duckdb: str | Path | None = None,
        log: str | None = None,
        durability: Durability = Durability.NORMAL,
        projections: Sequence[str] = (),
    ) -> Workspace:
        """The workspace of the log file `db` (or the JetStream `log`), with its analytics at
        `duckdb` (default: beside the log) and these Python projections (module.path:Class)."""
        db = Path(db)
        given = Path(duckdb) if duckdb is not None else None
        return cls(db, duckdb_path_for(db, given, log), durability, list(projections), log)

    # -- where things are ------------------------------------------------------------------

    @property
    def log_target(self) -> str | Path:
        """Where the log is: the JetStream URL, or the SQLite file."""
        return self.log or self.db

    async def open_log(self, *, writable: bool = True) -> LogStore:
        """The log (either backend), for reading and appending or for reading only."""
        from evlog.eventlog.store import open_log

        return await open_log(self.log_target, writable=writable, durability=self.durability)

    @property
    def projections_dir(self) -> Path:
        """SQL projection files: `projections/` beside the log."""
        return self.db.parent / "projections"

    def catalog(self) -> Catalog:
        """Every projection to maintain (built-in, Python, SQL files); errors in a module path
        given are BadOption, a refused SQL file is listed in the catalog's problems."""
        from evlog.projector.registry import ProjectionLoadError, load_catalog

        try:
            return load_catalog(self.projections_dir, self.projection_specs)
        except ProjectionLoadError as exc:
            raise BadOption(str(exc)) from None

    def projection_files(self) -> ProjectionFiles:
        from .live.projection_files import ProjectionFiles

        return ProjectionFiles(self.projections_dir, self.catalog)

    # -- operations --------------------------------------------------------------------------

    async def watch(
        self,
        paths: Sequence[Path],
        options: IngestOptions | None = None,
        *,
        multiline_timeout_s: float | None = None,
        exposure: Exposure | None = None,
    ) -> None:
        """Ingest `paths` as they change and keep the analytics fresh, until cancelled (see
        `evlog watch`): `options` as for `ingest` (its mapping, selection and start at end).
        EvlogError if a path does not exist or a follower already projects here."""
        from evlog.adapters.selection import Selection

        from .errors import EvlogError
        from .ingesting import IngestOptions, is_served
        from .live.watch import MULTILINE_TIMEOUT_S, WatchOptions, run_watch

        options = options or IngestOptions()
        for p in paths:
            if not p.exists():
                raise EvlogError(f"{p}: no such file or directory")
        if is_served(self.duckdb):
            raise EvlogError(f"a follower is already projecting into {self.duckdb}")
        selection = Selection(options.include, options.exclude, options.ignore_older_than_s)
        watching = WatchOptions(
            selection=selection,
            start_at_end=options.start_at_end,
            multiline_timeout_s=(
                MULTILINE_TIMEOUT_S if multiline_timeout_s is None else multiline_timeout_s
            ),
        )
        await run_watch(
            self.log_target, self.duckdb, list(paths), options.mapping, watching, exposure,
            self.projection_files(),
        )  # fmt: skip

    def field_map(self, **given: str | None) -> FieldMap:
        """The mapping options given (stream, stream_field, type_field, key_field, time_field,
        time_format, event_type), checked (BadOption for a bad --time-format)."""
        from evlog.adapters.fields import FieldMap, check_time_format

        try:
            check_time_format(given.get("time_format"))
        except ValueError as exc:
            raise BadOption(str(exc)) from None
        fields: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        return FieldMap(**fields)

    async def serve(
        self, options: ServeOptions | None = None, *, exposure: Exposure | None = None
    ) -> None:
        """Take pushed events (HTTP, webhooks, syslog) and keep the analytics fresh, until
        cancelled (see `evlog serve`). EvlogError if a follower already projects here, a hook's
        secret is missing, or there is nothing to serve."""
        import os

        from .errors import EvlogError
        from .ingesting import is_served
        from .serve.server import ServeOptions, run_serve

        if is_served(self.duckdb):
            raise EvlogError(f"a follower is already projecting into {self.duckdb}")
        await run_serve(
            self.log_target, self.duckdb, options or ServeOptions(), os.environ, exposure,
            self.projection_files(),
        )  # fmt: skip

    def ingest(
        self,
        paths: Sequence[str | Path],
        options: IngestOptions | None = None,
        reporter: Reporter | None = None,
    ) -> IngestSummary:
        """Append the records of `paths` (files, directories, repositories, "-" for stdin)."""
        return _run(self.ingest_async(paths, options, reporter))

    async def ingest_async(
        self,
        paths: Sequence[str | Path],
        options: IngestOptions | None = None,
        reporter: Reporter | None = None,
    ) -> IngestSummary:
        from .ingesting import IngestOptions, ingest_paths

        given = [Path(p) for p in paths]
        return await ingest_paths(self, given, options or IngestOptions(), reporter)

    def project(self) -> int:
        """Bring the analytics up to date with the log; returns the position reached."""
        return _run(self.project_async())

    async def project_async(self) -> int:
        from evlog.projector import Projector

        async with (
            await self.open_log(writable=False) as log,
            await Projector.open(log, self.duckdb, self.catalog().projections) as projector,
        ):
            await projector.catch_up()
            return projector.position

    def query(self, sql: str, *, max_rows: int | None = None) -> QueryResult:
        """Read-only `sql` over the analytics (through a running follower, if there is one)."""
        from . import analytics

        return analytics.query(self.duckdb, sql, max_rows=max_rows)

    def tables(self) -> QueryResult:
        """The analytics' public tables and views, with their number of columns."""
        from . import analytics

        return analytics.tables(self.duckdb)

    def schema(self, table: str | None = None) -> QueryResult:
        """Every public table's columns and types (or `table`'s)."""
        from . import analytics

        return analytics.schema(self.duckdb, table)

    def export(self, what: str, out: str | Path, fmt: str | None = None) -> int:
        """Rows of `what` (a table or a SELECT) written to `out` (.parquet, .csv, .jsonl, or
        `fmt`); returns how many."""
        from evlog.projector import QueryError
        from evlog.projector.export import export_format

        from . import analytics
        from .errors import EvlogError

        out = Path(out)
        try:
            chosen = export_format(out, fmt)
        except QueryError as exc:
            raise BadOption(str(exc)) from None
        if not out.parent.is_dir():
            raise EvlogError(f"{out.parent}: no such directory")
        return analytics.export(self.duckdb, what, out, chosen)

    def retry_dead_letters(self, source: str | None = None) -> list[RetryStats]:
        """Read the open dead letters (of `source`) again with their source's mapping."""
        return _run(self.retry_dead_letters_async(source))

    async def retry_dead_letters_async(self, source: str | None = None) -> list[RetryStats]:
        from evlog.adapters.retry import retry_dead_letters

        async with await self.open_log() as log:
            return await retry_dead_letters(log, source)

    def reset_source(self, name: str) -> bool:
        """Forget where the source stored as `name` was read to, its stored options and the
        earlier generations it kept apart: its next ingest reads it from the start. Its events
        stay, and their keys keep a re-read from appending them twice. Whether it was known."""
        from evlog.adapters.lineage import kept_of

        async def go() -> bool:
            async with await self.open_log() as log:
                for other in await log.known_sources():
                    if (kept := kept_of(other)) is not None and kept[0] == name:
                        await log.forget_source(other)
                return await log.forget_source(name)

        return _run(go())

    def source_name(self, source: str) -> str:
        """A source as a user names it (a relative or absolute path, of a file that may be gone
        by now, or of a repository; or its stored name) -> its stored name; EvlogError if the
        log knows no such source."""
        from evlog.adapters import lineage, mapping

        from .errors import EvlogError

        path = Path(source).expanduser()
        candidates = [source, f"file:{path.resolve()}", f"git:{path.resolve()}"]
        if path.exists():
            candidates.insert(0, mapping.source_of(path))

        async def known_sources() -> set[str]:
            async with await self.open_log(writable=False) as log:
                return await log.known_sources()

        known = _run(known_sources()) if self.log is not None or self.db.exists() else set()
        known = {name for name in known if not lineage.is_kept(name)}
        found = next((c for c in candidates if c in known), None)
        if found is None:
            listed = ", ".join(sorted(known)[:5]) or "none yet"
            raise EvlogError(f"{source}: no such source in {self.log_target} (known: {listed})")
        return str(found)

    def rebuild(
        self,
        names: Sequence[str] | None = None,
        from_seq: int = 0,
        *,
        progress: Callable[[Progress], None] | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> dict[str, int]:
        """Rebuild projections (`names`; None: all) from the log beside the live tables, then
        swap; rows up to `from_seq` are kept. Through a running follower if there is one. A
        damaged analytics file is moved aside and rebuilt whole (`on_note` hears it). Returns
        the events replayed per projection."""
        from evlog.projector import by_name

        from . import analytics
        from .errors import EvlogError

        catalog = self.catalog()
        try:
            chosen = [p.name for p in by_name(list(names), catalog.projections)] if names else None
        except KeyError as exc:
            raise EvlogError(str(exc.args[0])) from None
        payload = {"op": "rebuild", "names": chosen, "from_seq": from_seq}
        reply = analytics.remote(self.duckdb, payload)
        if reply is not None:
            return dict(reply["replayed"])
        return dict(_run(self._rebuild(catalog.projections, chosen, from_seq, progress, on_note)))

    async def _rebuild(
        self,
        projections: list[Any],
        names: list[str] | None,
        from_seq: int,
        progress: Callable[[Progress], None] | None,
        on_note: Callable[[str], None] | None,
    ) -> dict[str, int]:
        from evlog.projector import Projector

        from .failures import is_damaged_duckdb

        async with await self.open_log(writable=False) as log:
            try:
                projector = await Projector.open(log, self.duckdb, projections)
            except Exception as exc:
                if not is_damaged_duckdb(exc):
                    raise
                import asyncio

                aside = await asyncio.to_thread(_move_aside, self.duckdb)
                if on_note is not None:
                    on_note(
                        f"{self.duckdb} is damaged ({str(exc).splitlines()[0]}): moved to"
                        f" {aside}; rebuilding every projection from the log"
                    )
                projector = await Projector.open(log, self.duckdb, projections)
                names, from_seq = None, 0
            async with projector:
                replayed = await projector.rebuild(names, from_seq=from_seq, progress=progress)
                await projector.catch_up()
                return replayed

    def git_at(self, repo: str, when: str, path: str | None = None) -> CommitAt:
        """The commit that was the tip of `repo`'s (a repository's path, or its stream)
        first-parent history at `when` (ISO 8601, UTC unless it says, or epoch), as `git
        rev-list -1 --first-parent --before=WHEN` says, and whether `path` existed in it."""
        from evlog.adapters.fields import parse_time_ns
        from evlog.adapters.git import GitAdapter

        from .errors import EvlogError

        stream = GitAdapter(Path(repo)).default_stream if Path(repo).is_dir() else repo
        try:
            ns = parse_time_ns(when)
        except ValueError as exc:
            raise EvlogError(str(exc)) from None
        if ns is None:
            raise EvlogError("a time is needed, e.g. 2024-03-01T12:00:00Z")
        t = f"make_timestamp({ns // 1000})"
        sql = f"SELECT sha, committed_at, subject, pos FROM git_commit_at({_sql_text(stream)}, {t})"
        if path is not None:
            sql = (
                f"SELECT c.*, p.existed FROM ({sql}) c,"
                f" git_path_at({_sql_text(stream)}, {t}, {_sql_text(path)}) p"
            )
        started = time.perf_counter()
        result = self.query(sql)
        took_ms = (time.perf_counter() - started) * 1e3
        if not result.rows:
            known = self.query("SELECT DISTINCT repo FROM git_chain_current").rows
            names = ", ".join(str(r[0]) for r in known) or "none yet"
            raise EvlogError(f"no commit of {stream} at or before {when} (repositories: {names})")
        row = dict(zip(result.columns, result.rows[0], strict=True))
        existed = bool(row["existed"]) if path is not None else None
        return CommitAt(
            str(row["sha"]), row["committed_at"], str(row["subject"]), int(row["pos"]),
            existed, took_ms,
        )  # fmt: skip

    def sources(self) -> list[SourceInfo]:
        """Every source with a checkpoint or an open dead letter: how it is read, where it
        resumes, when it last moved."""
        return list(_run(self._sources()))

    async def _sources(self) -> list[SourceInfo]:
        from evlog.adapters import lineage
        from evlog.adapters.mapping import Mapping, describe

        if self.log is None and not self.db.exists():
            return []
        async with await self.open_log(writable=False) as log:
            rows = {
                r["source"]: r
                for r in await log.source_checkpoints()
                if not lineage.is_kept(r["source"])
            }
            dead: dict[str, int] = {}
            after = 0
            while page := await log.dead_letters(limit=10_000, after=after):
                for d in page:
                    dead[d["source"]] = dead.get(d["source"], 0) + 1
                after = int(page[-1]["id"])
        out = []
        for name in sorted(set(rows) | set(dead)):
            row = rows.get(name) or {}
            position = row.get("position")
            mapping = Mapping.from_json(
                position.get("mapping") if isinstance(position, dict) else None
            )
            out.append(
                SourceInfo(
                    name,
                    mapping.adapter if mapping else None,
                    describe(mapping) if mapping else "",
                    _position_text(position) if row else "not read (dead letters only)",
                    row.get("last_seq"),
                    row.get("updated_ns"),
                    dead.get(name, 0),
                )
            )
        return out

    def dead_letters(
        self, *, source: str | None = None, limit: int | None = 100
    ) -> list[dict[str, Any]]:
        """The newest `limit` open dead letters (of `source`), oldest first."""
        return _run(self._dead_letters(source, limit))

    async def _dead_letters(self, source: str | None, limit: int | None) -> list[dict[str, Any]]:
        async with await self.open_log(writable=False) as log:
            return await log.dead_letters(source=source, limit=limit)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """A source the log knows (`Workspace.sources`, `evlog source list`)."""

    source: str  # its stored name (file:/path, git:/path, ...)
    adapter: str | None  # how it is read
    options: str  # the options it is read with, as flags
    position: str  # where reading resumes, for a person
    last_seq: int | None  # the last event it appended
    updated_ns: int | None  # when its checkpoint last moved
    open_dead_letters: int

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "adapter": self.adapter,
            "options": self.options,
            "position": self.position,
            "last_seq": self.last_seq,
            "updated_ns": self.updated_ns,
            "open_dead_letters": self.open_dead_letters,
        }


def _position_text(position: Any) -> str:
    """Where a checkpoint resumes, in words (a file's line and byte; else what it holds)."""
    if not isinstance(position, dict):
        return str(position)
    if "offset" in position:
        gen = int(position.get("gen") or 0)
        text = f"line {position.get('line', 0)}, byte {position['offset']}"
        rotated = len(position.get("rotated") or ())
        return text + (f", generation {gen} ({rotated} rotated kept)" if gen else "")
    keys = [k for k in position if k not in ("mapping", "name")]
    return ", ".join(keys[:4]) or "-"


@dataclass(frozen=True, slots=True)
class CommitAt:
    """The tip of a repository's first-parent history at a time (`Workspace.git_at`)."""

    sha: str
    committed_at: Any
    subject: str
    pos: int
    existed: bool | None = None  # whether the path asked about existed in it (None: none asked)
    took_ms: float = 0.0


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _move_aside(path: Path) -> Path:
    """Rename a damaged analytics file (and its WAL) out of the way; nothing is deleted."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    path.rename(aside)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        wal.rename(aside.with_name(aside.name + ".wal"))
    return aside


def _run(coro: Any) -> Any:
    import asyncio  # here, as the CLI imports this module to start (docs/performance.md#cli-start)

    from .runtime import run

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run(coro)
    coro.close()
    raise RuntimeError("called from a running event loop: await the *_async form instead")
