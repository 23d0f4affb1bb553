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

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evlog.eventlog import Durability
from evlog.eventlog.store import LogStore, open_log

from .errors import BadOption
from .paths import DEFAULT_DB, duckdb_path_for

if TYPE_CHECKING:
    from evlog.adapters.retry import RetryStats
    from evlog.projector import QueryResult
    from evlog.projector.registry import Catalog

    from .ingesting import IngestOptions, IngestSummary, Reporter
    from .live.projection_files import ProjectionFiles


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

    def dead_letters(
        self, *, source: str | None = None, limit: int | None = 100
    ) -> list[dict[str, Any]]:
        """The newest `limit` open dead letters (of `source`), oldest first."""
        return _run(self._dead_letters(source, limit))

    async def _dead_letters(self, source: str | None, limit: int | None) -> list[dict[str, Any]]:
        async with await self.open_log(writable=False) as log:
            return await log.dead_letters(source=source, limit=limit)


def _run(coro: Any) -> Any:
    from .runtime import run

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run(coro)
    coro.close()
    raise RuntimeError("called from a running event loop: await the *_async form instead")
