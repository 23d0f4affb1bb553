"""`evlog` commands (typer). Each command parses options, calls the library, and prints."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import aclosing
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from evlog.eventlog import Durability
from evlog.eventlog.store import is_nats, open_log

from . import output
from .failures import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    FILES,
    USER_ERRORS,
    explain,
    first_cause,
)
from .latency_report import BUDGETED, parse_duration_s, report, sparkline
from .nats_cli import nats_app
from .paths import DEFAULT_DB, duckdb_path_for
from .runtime import Interrupted, UsageError, UserError, fail, run, until_signalled
from .workspace import Workspace

# Adapters, the projector (DuckDB, Arrow) and the live servers are imported by the commands that
# use them, not here: every command would otherwise pay ~0.3 s to start (`import evlog.cli`).
if TYPE_CHECKING:
    from evlog.adapters import IngestStats
    from evlog.projector import Progress, Projection
    from evlog.projector.registry import Catalog

    from .ingesting import IngestSummary
    from .live.exposure import Exposure

app = typer.Typer(
    name="evlog",
    help="Durable, replayable event log (SQLite WAL) with fresh DuckDB analytics over it.\n\n"
    "Shell completion: evlog --install-completion (bash, zsh, fish, PowerShell).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no box drawing, no type labels on flags
)


# The CLI's handle on the application: one Workspace per run, made by the root callback.
Settings = Workspace


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def _print_version(value: bool | None) -> None:
    if value:
        from importlib.metadata import version

        print(f"evlog {version('evlog')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        Path, typer.Option(envvar="EVLOG_DB", help="The event log file (SQLite).")
    ] = DEFAULT_DB,
    log: Annotated[
        str | None,
        typer.Option(
            "--log",
            envvar="EVLOG_LOG",
            help="Where the log is: nats://host:4222[,host2:4222...] for a JetStream cluster"
            " (pip install 'evlog[nats]'; docs/scale-out.md), or a file path (as --db).",
            show_default=False,
        ),
    ] = None,
    duckdb: Annotated[
        Path | None,
        typer.Option(envvar="EVLOG_DUCKDB", help="The analytics file (default: beside --db)."),
    ] = None,
    durability: Annotated[
        Durability,
        typer.Option(
            envvar="EVLOG_DURABILITY",
            help="normal: commits survive a crash of evlog; full: also power loss (fsync each).",
        ),
    ] = Durability.NORMAL,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="EVLOG_DEBUG", help="Show the traceback of an unexpected failure."
        ),
    ] = False,
    projection: Annotated[
        list[str] | None,
        typer.Option(
            "--projection",
            envvar="EVLOG_PROJECTIONS",
            help="Also maintain this Python projection, module.path:ClassName (repeatable).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = None,
) -> None:
    if log is not None and not is_nats(log):
        db, log = Path(log), None
    ctx.obj = Workspace(
        db=db,
        duckdb=duckdb_path_for(db, duckdb, log),
        durability=durability,
        projection_specs=list(projection or []),
        log=log,
        debug=debug,
    )
    _DEBUG[0] = debug
    FILES.update(db=str(db), duckdb=str(ctx.obj.duckdb))


FORMAT_HELP = "table (a terminal's default), plain (a pipe's default), json, nl, csv or tsv."
FORMAT = typer.Option("--format", help=FORMAT_HELP, show_default=False)
AS_JSON = typer.Option("--json", help="A JSON array of objects (--format json).")
AS_NL = typer.Option("--nl", help="One JSON object per line (--format nl).")
AS_CSV = typer.Option("--csv", help="CSV with a header row (--format csv).")
AS_TSV = typer.Option("--tsv", help="Tab-separated with a header row (--format tsv).")


def output_format(fmt: str | None, **flags: bool) -> str:
    """The one format asked for by --format and the --json/--nl/--csv/--tsv flags; asking for
    two different ones is a usage error (exit 2), as is an unknown name."""
    from evlog import rendering

    chosen = {name for name, on in flags.items() if on}
    if fmt is not None:
        if fmt not in rendering.FORMATS:
            raise UsageError(f"--format {fmt!r}: one of {', '.join(rendering.FORMATS)}")
        chosen.add(fmt)
    if len(chosen) > 1:
        raise UsageError(f"choose one output format, not {' and '.join(sorted(chosen))}")
    return chosen.pop() if chosen else rendering.default_format()


# -- ingest -------------------------------------------------------------------------------------

MAX_ERROR_LINES = 20
METRICS_PORT = typer.Option(help="Serve Prometheus metrics on this port (0: any free port).")
METRICS_HOST = typer.Option(help="Address for --metrics-port (loopback unless you say).")
UI_PORT = typer.Option(
    "--ui",
    help="Serve the live page (pipeline health and analytics charts) on this port (0: any"
    " free port); its URL, with the token it needs, is printed at start.",
)
UI_HOST = typer.Option(help="Address for --ui (loopback unless you say).")

# Options of `ingest` and `watch` (one definition each, so the two commands stay in step).
O_ADAPTER = typer.Option(
    "--adapter", "-a", help="Force an adapter: jsonl, csv, log, whatsapp, slack or git."
)
O_STREAM = typer.Option(help="Stream name (default: from the file or repository name).")
O_STREAM_FIELD = typer.Option(help="Record field naming the stream (dotted path).")
O_TYPE_FIELD = typer.Option(help="Record field naming the event type.")
O_KEY_FIELD = typer.Option(help="Record field with a unique id (re-ingesting never duplicates).")
O_TIME_FIELD = typer.Option(help="Record field with the event time (ISO 8601 or epoch).")
O_TYPE = typer.Option("--type", help="The event type of every record.")
O_PATTERN = typer.Option(help="log: a regex with named groups, which become fields.")
O_INCLUDE = typer.Option(
    "--include", help="In directories, only files matching this glob (repeatable), e.g. '*.log'."
)
O_EXCLUDE = typer.Option("--exclude", help="In directories, skip files matching this glob.")
O_READ_FROM = typer.Option(
    help="start: read new files from their beginning; end: skip what a file already holds"
    " the first time it is seen (live logs; jsonl and log files)."
)
O_IGNORE_OLDER = typer.Option(
    help="Skip files not modified within this long, e.g. 7d or 12h.", show_default=False
)
O_DELIMITER = typer.Option(
    help="csv: the field delimiter (default: tab for .tsv, else sniffed from the first lines).",
    show_default=False,
)
O_DETECT_TYPES = typer.Option(
    "--detect-types", help="csv: store numbers as numbers (not text) in the payload."
)
O_TZ = typer.Option(
    help="whatsapp: the zone of the export's times (e.g. Europe/Berlin); default UTC, i.e."
    " the phone's wall-clock time stored as if it were UTC.",
    show_default=False,
)
O_ALL = typer.Option("--all", help="git: remote-tracking branches and tags too, not only branches.")
O_SINCE = typer.Option(
    help="git: only commits after this date (git's --since, e.g. 2024-01-01 or '2 weeks ago').",
    show_default=False,
)
O_PATH = typer.Option(
    "--path", help="git: only commits touching this path, and only its files (repeatable)."
)
O_VERBOSE = typer.Option("--verbose", "-v", help="List every file skipped, not just a count.")


class StartAt(StrEnum):
    start = "start"
    end = "end"


@app.command("ingest")
def ingest_cmd(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files, directories (read recursively), git repositories; '-': stdin."),
    ],
    adapter: Annotated[str | None, O_ADAPTER] = None,
    stream: Annotated[str | None, O_STREAM] = None,
    stream_field: Annotated[str | None, O_STREAM_FIELD] = None,
    type_field: Annotated[str | None, O_TYPE_FIELD] = None,
    key_field: Annotated[str | None, O_KEY_FIELD] = None,
    time_field: Annotated[str | None, O_TIME_FIELD] = None,
    event_type: Annotated[str | None, O_TYPE] = None,
    pattern: Annotated[str | None, O_PATTERN] = None,
    date_order: Annotated[
        str | None,
        typer.Option(
            help="whatsapp: how dates read, dmy, mdy or ymd (default: settled by the"
            " file's own dates; a file whose dates all fit both ways is read day-first).",
            show_default=False,
        ),
    ] = None,
    tz: Annotated[str | None, O_TZ] = None,
    delimiter: Annotated[str | None, O_DELIMITER] = None,
    detect_types: Annotated[bool, O_DETECT_TYPES] = False,
    all_refs: Annotated[bool, O_ALL] = False,
    since: Annotated[str | None, O_SINCE] = None,
    git_paths: Annotated[list[str] | None, O_PATH] = None,
    include: Annotated[list[str] | None, O_INCLUDE] = None,
    exclude: Annotated[list[str] | None, O_EXCLUDE] = None,
    read_from: Annotated[StartAt, O_READ_FROM] = StartAt.start,
    ignore_older_than: Annotated[str | None, O_IGNORE_OLDER] = None,
    remap: Annotated[
        bool,
        typer.Option(
            "--remap",
            help="Read on with these options although the source was read with others before.",
        ),
    ] = False,
    verbose: Annotated[bool, O_VERBOSE] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The summary as JSON on stdout.")] = False,
    project_too: Annotated[
        bool,
        typer.Option(
            "--project",
            help="Also bring the DuckDB analytics up to date, while reading (as `evlog project`"
            " after it would, in less time: projecting overlaps the reading).",
        ),
    ] = False,
) -> None:
    """Append the records of PATHS to the log (a re-run appends only what is new).

    Adapters (detected from the name or content, or --adapter): jsonl, csv (and .tsv), log
    (plain lines; '-' reads stdin), whatsapp (.txt or .zip export), slack (.zip export), git (a
    repository: commits, branch moves, first-parent history; a re-run reads only new commits).
    A directory is read recursively (hidden files skipped; --include/--exclude choose); files
    of no known format there are listed, not read.

    Each source's options are stored with its checkpoint: a re-run without options reads it as
    before; a re-run with other options is refused unless --remap. Every record read ends as an
    event, a duplicate or a dead letter (or is held back: a last line still being written), and
    the summary shows the sum. A source that fails is reported and the others go on (exit 1)."""
    from .ingesting import IngestOptions, checked_mapping

    s = settings(ctx)
    wanted = checked_mapping(
        adapter=adapter, stream=stream, stream_field=stream_field, type_field=type_field,
        key_field=key_field, time_field=time_field, event_type=event_type, pattern=pattern,
        date_order=date_order, tz=tz, delimiter=delimiter, detect_types=detect_types,
        all_refs=all_refs, since=since, paths=git_paths,
    )  # fmt: skip
    options = IngestOptions(
        wanted, tuple(include or ()), tuple(exclude or ()), _duration(ignore_older_than),
        read_from is StartAt.end, remap, project_too,
    )  # fmt: skip
    with IngestReporter() as reporter:
        summary = run(s.ingest_async(paths, options, reporter))
    reporter.finish()
    _say_skipped(summary.skipped, summary.too_old, verbose)
    if summary.projected_to is not None:
        output.say(f"projected into {s.duckdb}; position {summary.projected_to}")
    render_ingest(summary, as_json)
    if not summary.ok:
        raise typer.Exit(1)


def _duration(text: str | None) -> float | None:
    return parse_duration_s(text, "s") if text else None


class IngestReporter:
    """The ingest's progress on a terminal (a bar per source) and its first bad records."""

    def __init__(self) -> None:
        self.bar = output.ingest_progress() if sys.stderr.isatty() else None
        self.task: Any = None
        self.shown = 0

    def __enter__(self) -> IngestReporter:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def source_started(self, path: Path) -> None:
        if self.bar is not None:
            size = path.stat().st_size if path.is_file() else None
            self.task = self.bar.add_task(str(path), total=size, appended=0, dead=0)

    def batch_done(self, path: Path, batch: Any, stats: IngestStats) -> None:
        for dl in batch.dead_letters:
            if self.shown < MAX_ERROR_LINES:
                text = f"{dl.position}: {dl.error}"
                console = self.bar.console if self.bar else output.stderr
                console.print(text, markup=False, highlight=False)
            self.shown += 1
        if self.bar is not None:
            pos = batch.position
            done = pos.get("offset") if isinstance(pos, dict) else None
            self.bar.update(self.task, completed=done if done is not None else stats.appended)
            self.bar.update(self.task, appended=stats.appended, dead=stats.dead_letters)

    def source_done(self, path: Path) -> None:
        pass

    def note(self, text: str) -> None:
        output.say(text)

    def finish(self) -> None:
        if self.shown > MAX_ERROR_LINES:
            more = self.shown - MAX_ERROR_LINES
            output.say(f"... and {more} more bad records: see `evlog deadletters`")


def render_ingest(summary: IngestSummary, as_json: bool) -> None:
    """The run's summary: JSON, or the notes, each source's law and the total's, then errors."""
    total, per_source = summary.total, summary.sources
    if as_json:
        output.print_json(summary.to_json())
    elif len(summary.failed) < len(per_source):
        for one in per_source:
            for note in one.notes:
                output.say(note)
            if len(per_source) > 1 and not one.error:
                output.say(f"{one.source}: {one.law()}")
        p50, p99 = summary.commit_percentile_ns(0.5), summary.commit_percentile_ns(0.99)
        output.say(
            f"{total.law()}; appended {total.appended} events in {total.seconds:.2f} s"
            f" ({summary.events_per_second:,.0f} events/s); commit latency p50 {output.ms(p50)}"
            f" p99 {output.ms(p99)}"
        )
    for one in summary.failed:
        output.say(f"evlog: error: {one.error}")
    for one in summary.unaccounted:
        output.say(
            f"evlog: error: {one.unaccounted} records of {one.source} are unaccounted for"
            f" ({one.law()}): this is a bug in evlog, please report it"
        )
    if summary.projecting_failed is not None:
        output.say(f"evlog: error: {summary.projecting_failed}")


def _say_skipped(skipped: list[tuple[Path, str]], too_old: list[Path], verbose: bool) -> None:
    """Files found in directories and not read: each with its reason, or (many) a count."""
    rows = [(p, why) for p, why in skipped] + [
        (p, "older than --ignore-older-than") for p in too_old
    ]
    if not rows:
        return
    if verbose or len(rows) <= 10:
        for path, why in rows:
            output.say(f"{path}: skipped: {why}")
    else:
        reasons = Counter(why for _, why in rows)
        listed = "; ".join(f"{n} {why}" for why, n in reasons.most_common())
        output.say(f"skipped {len(rows)} files ({listed}); --verbose lists them")


@app.command()
def watch(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Directories (or files) to watch.")],
    adapter: Annotated[str | None, O_ADAPTER] = None,
    stream: Annotated[str | None, O_STREAM] = None,
    stream_field: Annotated[str | None, O_STREAM_FIELD] = None,
    type_field: Annotated[str | None, O_TYPE_FIELD] = None,
    key_field: Annotated[str | None, O_KEY_FIELD] = None,
    time_field: Annotated[str | None, O_TIME_FIELD] = None,
    event_type: Annotated[str | None, O_TYPE] = None,
    pattern: Annotated[str | None, O_PATTERN] = None,
    tz: Annotated[str | None, O_TZ] = None,
    delimiter: Annotated[str | None, O_DELIMITER] = None,
    detect_types: Annotated[bool, O_DETECT_TYPES] = False,
    include: Annotated[list[str] | None, O_INCLUDE] = None,
    exclude: Annotated[list[str] | None, O_EXCLUDE] = None,
    read_from: Annotated[StartAt, O_READ_FROM] = StartAt.start,
    ignore_older_than: Annotated[str | None, O_IGNORE_OLDER] = None,
    multiline_timeout: Annotated[
        str,
        typer.Option(
            help="log: a record that continuation lines may still follow (a stack trace) is"
            " taken once its file has been quiet this long."
        ),
    ] = "1s",
    metrics_port: Annotated[int | None, METRICS_PORT] = None,
    metrics_host: Annotated[str, METRICS_HOST] = "127.0.0.1",
    ui_port: Annotated[int | None, UI_PORT] = None,
    ui_host: Annotated[str, UI_HOST] = "127.0.0.1",
) -> None:
    """Ingest files as they change and keep DuckDB fresh, live.

    Queries from other terminals (`evlog query`) are served while it runs. A file read before
    keeps the options it was read with; one that fails is reported and retried when it
    changes, and the others keep flowing. With --read-from end, files present at the start are
    read from their end; files that appear later are read whole."""

    from evlog.adapters.selection import Selection

    from .ingesting import checked_mapping, is_served
    from .live.exposure import Exposure

    s = settings(ctx)
    for p in paths:
        if not p.exists():
            raise UserError(f"{p}: no such file or directory")
    if is_served(s.duckdb):
        raise UserError(f"a follower is already projecting into {s.duckdb}")
    wanted = checked_mapping(
        adapter=adapter, stream=stream, stream_field=stream_field, type_field=type_field,
        key_field=key_field, time_field=time_field, event_type=event_type, pattern=pattern,
        tz=tz, delimiter=delimiter, detect_types=detect_types,
    )  # fmt: skip
    from .live.watch import WatchOptions, run_watch

    options = WatchOptions(
        selection=Selection(
            tuple(include or ()), tuple(exclude or ()), _duration(ignore_older_than)
        ),
        start_at_end=read_from is StartAt.end,
        multiline_timeout_s=parse_duration_s(multiline_timeout, "s"),
    )
    run(
        until_signalled(
            run_watch(
                s.log_target,
                s.duckdb,
                paths,
                wanted,
                options,
                Exposure(metrics_port, metrics_host, ui_port, ui_host),
                s.projection_files(),
            )
        )
    )


# -- reading the log ----------------------------------------------------------------------------


@app.command()
def tail(
    ctx: typer.Context,
    last: Annotated[int, typer.Option("--last", "-n", help="Show this many past events.")] = 10,
    follow: Annotated[bool, typer.Option(help="Keep printing new events.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print the last events, then new ones as they commit.

    Ctrl-C stops it; --no-follow prints the last events and exits."""
    s = settings(ctx)

    async def go() -> None:
        async with await s.open_log(writable=False) as log:
            head = await log.head()
            start = max(0, head - last)
            if not follow:
                for ev in await log.read(start, limit=last):
                    _print_event(ev, as_json)
                return
            async with aclosing(log.follow(start)) as batches:
                async for batch in batches:
                    for ev in batch:
                        _print_event(ev, as_json)

    run(until_signalled(go()))


def _print_event(ev: Any, as_json: bool) -> None:
    if as_json:
        output.print_json(ev.to_dict())
    else:
        sys.stdout.write(f"{ev.seq}\t{ev.stream}@{ev.version}\t{ev.type}\t{ev.payload_json}\n")
        sys.stdout.flush()


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON on stdout.")] = False,
) -> None:
    """Show the log's head, counts, sources and file sizes."""
    s = settings(ctx)

    async def go() -> tuple[Any, list[dict[str, Any]]]:
        async with await s.open_log(writable=False) as log:
            return await log.stats(), await log.source_checkpoints()

    stats, sources = run(go())
    info = {
        "db": stats.path,
        "head_seq": stats.head_seq,
        "events": stats.events,
        "streams": stats.streams,
        "sources": stats.sources,
        "dead_letters": stats.dead_letters,
        "db_bytes": stats.db_bytes,
        "wal_bytes": stats.wal_bytes,
    }
    if as_json:
        output.print_json({**info, "source_checkpoints": sources})
        return
    for k, v in info.items():
        output.stdout.print(f"{k:13s} {v}", highlight=False)


deadletters_app = typer.Typer(
    help="Records that could not be read: list, retry or purge them.",
    invoke_without_command=True,
    rich_markup_mode=None,
)
app.add_typer(deadletters_app, name="deadletters")


@deadletters_app.callback()
def deadletters(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source (a path or name).")] = None,
    limit: Annotated[int, typer.Option(help="Most recent N.")] = 50,
    fmt: Annotated[str | None, FORMAT] = None,
    as_json: Annotated[bool, AS_JSON] = False,
    as_nl: Annotated[bool, AS_NL] = False,
    as_csv: Annotated[bool, AS_CSV] = False,
    as_tsv: Annotated[bool, AS_TSV] = False,
    resolved: Annotated[
        bool, typer.Option("--resolved", help="Those a retry turned into events instead.")
    ] = False,
) -> None:
    """List records that could not be read: where, why, and their raw text.

    Subcommands retry them with a source's current options, or purge them."""
    if ctx.invoked_subcommand is not None:
        return
    s = settings(ctx)
    name = s.source_name(source) if source else None

    async def go() -> list[dict[str, Any]]:
        async with await s.open_log(writable=False) as log:
            return await log.dead_letters(source=name, limit=limit, resolved=resolved)

    fmt = output_format(fmt, json=as_json, nl=as_nl, csv=as_csv, tsv=as_tsv)
    rows = run(go())
    cols = ["id", "position", "error", "raw"] + (["resolved_seq"] if resolved else [])
    output.print_rows(cols, [[r[c] for c in cols] for r in rows], fmt)


@deadletters_app.command("retry")
def deadletters_retry(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Argument(help="A source (path or name); default: every source.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The outcome as JSON.")] = False,
) -> None:
    """Read dead letters again with each source's current options.

    Change a source's options first with `evlog ingest PATH --remap ...`. A record that now
    reads is appended once, under the key it would have had, and its dead letter is marked
    resolved in the same transaction."""
    from evlog.adapters.retry import retry_dead_letters

    s = settings(ctx)
    name = s.source_name(source) if source else None

    async def go() -> list[Any]:
        async with await s.open_log() as log:
            return await retry_dead_letters(log, name)

    outcome = run(go())
    if as_json:
        output.print_json([one.to_json() for one in outcome])
        return
    if not outcome:
        output.stderr.print("no open dead letters" + (f" for {name}" if name else ""))
    for one in outcome:
        if one.skipped:
            line = f"{one.source}: not retried: {one.skipped}"
        else:
            line = (
                f"{one.source}: tried {one.tried} = resolved {one.resolved}"
                f" + still failing {one.still_failing}"
            )
            top = sorted(one.reasons.items(), key=lambda kv: -kv[1])[:3]
            line += "".join(f"\n  {n} x {why}" for why, n in top)
        output.say(line)


@deadletters_app.command("purge")
def deadletters_purge(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Argument(help="Only this source (a path or name).", show_default=False)
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            help="Only those recorded more than this long ago, e.g. 30d.", show_default=False
        ),
    ] = None,
    resolved: Annotated[
        bool, typer.Option("--resolved", help="Only those a retry resolved.")
    ] = False,
    everything: Annotated[
        bool, typer.Option("--all", help="Every dead letter (needed when nothing else narrows).")
    ] = False,
) -> None:
    """Delete dead letters that are no longer wanted.

    Nothing else changes: events stay, and a source read again does not bring back the
    records already read past."""
    s = settings(ctx)
    if source is None and older_than is None and not resolved and not everything:
        raise UsageError("say which: a SOURCE, --older-than, --resolved, or --all")
    name = s.source_name(source) if source else None
    before = time.time_ns() - int(parse_duration_s(older_than, "s") * 1e9) if older_than else None

    async def go() -> int:
        async with await s.open_log() as log:
            return await log.purge_dead_letters(
                source=name, older_than_ns=before, resolved_only=resolved
            )

    output.say(f"deleted {run(go()):,} dead letters")


source_app = typer.Typer(
    help="The sources read into the log: their checkpoints and options.", rich_markup_mode=None
)
app.add_typer(source_app, name="source")


@source_app.command("reset")
def source_reset(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="A source: a path, or its name (evlog status).")],
) -> None:
    """Forget where SOURCE was read to, and its stored options.

    Its next ingest reads it from the start with the options it is given. Its events stay in
    the log, and their keys keep a re-read from appending them twice."""
    s = settings(ctx)
    name = s.source_name(source)

    async def go() -> bool:
        async with await s.open_log() as log:
            return await log.forget_source(name)

    if not run(go()):
        raise UserError(f"{name}: no such source in {s.log_target} (see `evlog status --json`)")
    output.stderr.print(f"{name}: reset; the next ingest reads it from the start")


# -- projecting and querying -------------------------------------------------------------------


@app.command()
def project(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep applying new events until Ctrl-C.")
    ] = False,
    flush_every: Annotated[
        float,
        typer.Option(
            help="Seconds between moves of live rows from memory to the file"
            " (0: write live batches straight to the file)."
        ),
    ] = 1.0,
    metrics_port: Annotated[int | None, METRICS_PORT] = None,
    metrics_host: Annotated[str, METRICS_HOST] = "127.0.0.1",
    ui_port: Annotated[int | None, UI_PORT] = None,
    ui_host: Annotated[str, UI_HOST] = "127.0.0.1",
) -> None:
    """Bring the DuckDB analytics up to date (and keep them so with --follow).

    While following, other processes can run `evlog query` and `evlog rebuild`: they are served
    through a local socket, as DuckDB lets only one process write the file."""

    from .live.exposure import Exposure

    s = settings(ctx)
    from .ingesting import is_served

    if is_served(s.duckdb):
        raise UserError(f"a follower is already projecting into {s.duckdb}; use `evlog query`")
    if (metrics_port is not None or ui_port is not None) and not follow:
        raise UsageError("--metrics-port and --ui need --follow (or use `evlog ui`)")
    exposure = Exposure(metrics_port, metrics_host, ui_port, ui_host)
    run(until_signalled(_project(s, follow, flush_every, exposure)))


async def _project(s: Settings, follow: bool, flush_every: float, exposure: Exposure) -> None:
    from evlog.projector import Projector

    from .live.exposure import exposed
    from .live.projection_files import follow_projection_files

    catalog = await asyncio.to_thread(s.catalog)
    _say_refused(catalog)
    async with (
        await s.open_log(writable=False) as log,
        await Projector.open(
            log,
            s.duckdb,
            catalog.projections,
            flush_every=flush_every,
            progress=_progress_printer(),
        ) as projector,
    ):
        if not follow:
            n = await projector.catch_up(_progress_printer())
            output.stderr.print(
                f"projected {n} events into {s.duckdb}; position {projector.position}"
            )
            return
        async with exposed(projector, s.duckdb, exposure, s.log_target) as reach:
            for line in reach.lines(f"following {s.log_target} into {s.duckdb}"):
                output.say(line)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(projector.follow())
                tg.create_task(
                    follow_projection_files(projector, s.projections_dir, s.catalog, output.say)
                )


@app.command()
def ui(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 0,
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless you say).")] = (
        "127.0.0.1"
    ),
    budget: Annotated[str, typer.Option(help="Latency budget drawn on the charts.")] = "50ms",
) -> None:
    """Open the live page over the log and analytics as they are, read-only.

    Nothing is projected: run it beside `evlog project --follow` (whose queries it goes
    through) or after `evlog project`. A follower started with --ui serves the same page
    with its live latency. The URL printed at start carries the token the page needs."""
    s = settings(ctx)
    budget_ms = parse_duration_s(budget, "ms") * 1000
    if s.log is None and not s.db.exists():
        raise UserError(f"{s.db}: no event log yet (run `evlog ingest` first)")
    run(until_signalled(_ui(s, port, host, budget_ms)))


async def _ui(s: Settings, port: int, host: str, budget_ms: float) -> None:
    from .ui.app import serve_ui
    from .ui.sources import FileSource

    info = {"mode": "read-only", "log": str(s.log_target), "duckdb": str(s.duckdb)}
    async with (
        await s.open_log(writable=False) as log,
        serve_ui(FileSource(log, s.duckdb), port, host, info=info, budget_ms=budget_ms) as page,
    ):
        output.say(f"the live page (read-only): {page.url}  (Ctrl-C to stop)")
        await asyncio.Event().wait()


def _say_refused(catalog: Catalog) -> None:
    for line in catalog.problems:
        output.say(f"evlog: projection refused: {line}")


def _progress_printer() -> Callable[[Progress], None] | None:
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(p: Progress) -> None:
        now = time.monotonic()
        if now - last[0] < 0.2 and p.done < p.total:
            return
        last[0] = now
        pct = 100.0 * p.done / p.total if p.total else 100.0
        sys.stderr.write(f"\r{p.what}: {p.done}/{p.total} events ({pct:5.1f}%)")
        if p.done >= p.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


@app.command()
def rebuild(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Projections to rebuild (default: all).")
    ] = None,
    from_seq: Annotated[
        int, typer.Option("--from", help="Keep rows up to this seq; replay the rest.")
    ] = 0,
) -> None:
    """Rebuild projections from the log beside the live tables, then swap.

    Queries keep answering from the old tables until the swap; prints the events replayed
    per projection. A damaged analytics file is moved aside and rebuilt whole."""
    s = settings(ctx)
    _say_refused(s.catalog())
    t0 = time.perf_counter()
    replayed = s.rebuild(names, from_seq, progress=_progress_printer(), on_note=output.say)
    dt = time.perf_counter() - t0
    # One pass over the log feeds every chosen projection: its events are counted once.
    events = max(replayed.values(), default=0)
    if replayed:
        output.say(
            f"one pass of {events:,} events into {len(replayed)} projections in {dt:.2f} s"
            f" ({events / dt if dt else 0:,.0f} events/s)"
        )
    for name, n in replayed.items():
        output.stderr.print(f"rebuilt {name}: {n} events replayed")


@app.command("projections")
def projections_cmd(
    ctx: typer.Context,
    fmt: Annotated[str | None, FORMAT] = None,
    as_json: Annotated[bool, AS_JSON] = False,
    as_nl: Annotated[bool, AS_NL] = False,
    as_csv: Annotated[bool, AS_CSV] = False,
    as_tsv: Annotated[bool, AS_TSV] = False,
) -> None:
    """List every projection: kind, version, position, lag and rows per table.

    Kinds: builtin, python (--projection or an installed package's entry point), sql (files in
    projections/ beside the log). Figures come from a running follower when there is one."""
    from evlog import analytics

    s = settings(ctx)
    fmt = output_format(fmt, json=as_json, nl=as_nl, csv=as_csv, tsv=as_tsv)
    catalog = s.catalog()
    head = run(_log_head(s))
    state = analytics.projection_state(s.duckdb)
    rows = []
    for p in catalog.projections:
        live = state.get(p.name)
        tables = {t.name: analytics.row_count(s.duckdb, t.name) if live else None for t in p.tables}
        rows.append(
            [
                p.name,
                catalog.kind(p),
                p.version,
                live["generation"] if live else None,
                live["position"] if live else None,
                head - live["position"] if live else None,
                " ".join(f"{t}={n}" for t, n in tables.items()) if live else "",
                _projection_state(p, live["version"])
                if live
                else "not built yet: `evlog project` builds it",
            ]
        )  # fmt: skip
    for name in sorted(catalog.refused):
        rows.append([name, "sql", None, None, None, None, "", "refused (see stderr)"])
    _say_refused(catalog)
    cols = ["name", "kind", "version", "generation", "position", "lag", "rows", "state"]
    output.print_rows(cols, rows, fmt)


async def _log_head(s: Settings) -> int:
    if s.log is None and not s.db.exists():
        return 0
    async with await s.open_log(writable=False) as log:
        return await log.head()


projection_app = typer.Typer(
    help="Your own projections: check and add SQL projection files.", rich_markup_mode=None
)
app.add_typer(projection_app, name="projection")


@projection_app.command("add")
def projection_add(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A SQL projection file, NAME.sql.")],
    check: Annotated[
        bool, typer.Option("--check", help="Only check the file; change nothing.")
    ] = False,
) -> None:
    """Check a SQL projection file and add it (or replace the one of that name).

    The file goes to projections/ beside the log; a running follower builds it from the start
    of the log beside the live tables (a replaced one is rebuilt blue-green, and queries keep
    answering from the old tables until the swap); otherwise the next `evlog project` does.
    A file that does not check out (bad SQL, unknown columns, a statement that writes) is
    refused with one line and nothing changes. Format: docs/projections.md."""
    from evlog.projector import sqlfile

    s = settings(ctx)
    if not file.is_file():
        raise UserError(f"{file}: no such file")
    catalog = s.catalog()
    name = sqlfile.projection_name(file)
    others = [p for p in catalog.projections if not (catalog.kind(p) == "sql" and p.name == name)]
    try:
        projection = sqlfile.load(file, others)
    except sqlfile.ProjectionFileError as exc:
        raise UserError(str(exc)) from None
    tables = ", ".join(t.name for t in projection.tables) or "no tables"
    if check:
        output.say(f"{file}: ok: projection {name} ({tables}; version {projection.version})")
        return
    target = s.projections_dir / f"{name}.sql"
    replaced = target.exists()
    s.projections_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(file.read_bytes())
    tmp.replace(target)
    from .ingesting import is_served

    serving = is_served(s.duckdb)
    when = "the running follower builds it now" if serving else "`evlog project` builds it"
    verb = "replaced" if replaced else "added"
    output.say(f"projection {name} {verb} ({tables}) as {target}; {when}")


@app.command()
def query(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(help="A read-only SQL query over the analytics.")],
    fmt: Annotated[str | None, FORMAT] = None,
    as_json: Annotated[bool, AS_JSON] = False,
    as_nl: Annotated[bool, AS_NL] = False,
    as_csv: Annotated[bool, AS_CSV] = False,
    as_tsv: Annotated[bool, AS_TSV] = False,
    max_rows: Annotated[
        int | None,
        typer.Option(
            help=f"Print at most this many rows (default: all, or {output.TABLE_ROWS:,} in"
            " the table view, which says when it stopped).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run read-only SQL over the analytics (a running follower answers it).

    The same query prints the same bytes with or without a follower. Times are ISO 8601 (UTC
    for evlog's own columns), lists and structs are JSON, and JSON columns (payload, metadata)
    are nested objects in --json and --nl."""
    from evlog import analytics, rendering

    s = settings(ctx)
    fmt = output_format(fmt, json=as_json, nl=as_nl, csv=as_csv, tsv=as_tsv)
    if max_rows is not None and max_rows < 0:
        raise UsageError("--max-rows must be 0 or more")
    cap = max_rows if max_rows is not None else (output.TABLE_ROWS if fmt == "table" else None)
    result = analytics.query(s.duckdb, sql, max_rows=cap)
    rendering.write(result, fmt)
    if result.truncated:
        output.say(
            f"(only the first {cap:,} rows; --max-rows N for more, or --csv/--nl for every row)"
        )


@app.command()
def export(
    ctx: typer.Context,
    what: Annotated[str, typer.Argument(help="A table or view name, or a read-only SELECT.")],
    out: Annotated[Path, typer.Argument(help="The file to write: .parquet, .csv, .tsv or .jsonl.")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="parquet, csv or jsonl (default: from OUT's name)."),
    ] = None,
) -> None:
    """Write a table's or a query's rows to Parquet, CSV or JSON lines.

    DuckDB's COPY writes it (types kept in Parquet; JSON columns nested in JSON lines). Works
    while a follower runs: the follower writes the file."""
    rows = settings(ctx).export(what, out, fmt)
    output.say(f"wrote {rows:,} rows to {out}")


@app.command()
def snapshot(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="The DuckDB file to write (replaced if it exists).")],
) -> None:
    """Copy every projection into a DuckDB file other tools can open.

    For the duckdb CLI, a notebook or a BI tool while a follower holds the live file (DuckDB
    lets one process have it). Run it again to refresh; it includes rows the follower has not
    flushed yet. From Python, evlog.analytics.query() reaches a follower directly."""
    from evlog import analytics

    s = settings(ctx)
    if not out.parent.is_dir():
        raise UserError(f"{out.parent}: no such directory")
    tables = analytics.snapshot(s.duckdb, out, s.catalog().projections)
    output.say(f"wrote {sum(tables.values()):,} rows in {len(tables)} tables to {out}")


def _projection_state(p: Projection, built_version: int) -> str:
    if built_version == p.version:
        return "live"
    if p.upgrade_steps(built_version) is not None:
        return f"version {built_version}: upgraded in place on next run"
    return f"version {built_version}: rebuilt on next run"


@app.command()
def latency(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="Only events committed in this window, e.g. 10m.")
    ] = None,
    last: Annotated[int | None, typer.Option(help="Only the last N events.")] = None,
    budget: Annotated[
        str,
        typer.Option(help="Latency budget for read_to_visible (and written_to_visible)."),
    ] = "50ms",
    by: Annotated[str | None, typer.Option(help="Also per stream or per type.")] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="Which events: live (projected by a follower as they arrived), catch-up"
            " (by a one-off `evlog project` run), rebuild, or all."
        ),
    ] = "live",
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON on stdout.")] = False,
) -> None:
    """Report latency per stage, and exit 1 if p99 is over the budget.

    Stages: read_to_commit, commit_to_visible, read_to_visible, and for events whose source
    said when they were written (`evlog watch`) written_to_read and written_to_visible
    (docs/latency.md). Percentiles come from an HDR histogram (within 1%), with the share over
    the budget and p99 over time. Exit 1 when p99 of read_to_visible or written_to_visible is
    over the budget, so it can gate CI or cron.

    Only events projected live count by default: an event projected by a later one-off
    `evlog project` waited for that command, which says nothing about the pipeline."""
    s = settings(ctx)
    budget_ms = parse_duration_s(budget) * 1e3
    since_s = parse_duration_s(since, "s") if since else None
    rep = report(s.duckdb, since_s=since_s, last=last, budget_ms=budget_ms, by=by, mode=mode)
    total = rep.overall("read_to_visible")
    over = bool(rep.over_budget(budget_ms))
    others = {m: n for m, n in rep.by_mode.items() if mode not in ("all", m)}
    if as_json:
        output.print_json(
            {
                "budget_ms": budget_ms,
                "over_budget": over,
                "mode": mode,
                "events_by_mode": rep.by_mode,
                "stages": [x.to_json() for x in rep.stages],
                "p99_over_time": [
                    {"from_ns": t, "p99_ms": round(p, 3)} for t, p in rep.p99_over_time
                ],
            }
        )
    else:
        output.print_rows(
            ["stage", *(["group"] if by else []), "events", "p50 ms", "p90 ms", "p99 ms",
             "p99.9 ms", "max ms", "over budget"],
            [
                [
                    x.stage, *([x.group or "(all)"] if by else []), x.count, f"{x.p50_ms:.3f}",
                    f"{x.p90_ms:.3f}", f"{x.p99_ms:.3f}", f"{x.p999_ms:.3f}", f"{x.max_ms:.3f}",
                    f"{x.over_budget:.2%}",
                ]
                for x in rep.stages
            ],
            title=f"latency of events projected {mode} (budget {budget_ms:g} ms for"
            " read_to_visible and written_to_visible)",
        )  # fmt: skip
        if others:
            left_out = ", ".join(f"{n:,} {m}" for m, n in sorted(others.items()))
            output.say(f"left out: {left_out} (--mode all to include them)")
        if rep.p99_over_time:
            peak = max(p for _, p in rep.p99_over_time)
            output.say(
                f"p99 read_to_visible over time ({rep.window_s:.3g} s per bar, peak"
                f" {peak:.2f} ms): {sparkline(rep.p99_over_time, budget_ms)}"
            )
        if total.count:
            for stage in BUDGETED:
                if (whole := rep.overall(stage)).count:
                    verdict = "OVER" if whole.p99_ms > budget_ms else "within"
                    output.say(
                        f"p99 {stage} {whole.p99_ms:.2f} ms is {verdict} the"
                        f" {budget_ms:g} ms budget"
                    )
        else:
            output.say(f"no events projected {mode} to report")
    if over:
        raise typer.Exit(1)


git_app = typer.Typer(
    help="Questions about ingested git history, answered from the analytics.",
    rich_markup_mode=None,
)
app.add_typer(git_app, name="git")


@git_app.command("at")
def git_at(
    ctx: typer.Context,
    repo: Annotated[str, typer.Argument(help="The repository's path, or its stream (git/NAME).")],
    when: Annotated[str, typer.Argument(help="A time: ISO 8601 (UTC unless it says) or epoch.")],
    path: Annotated[str | None, typer.Argument(help="Also say whether this path existed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON on stdout.")] = False,
) -> None:
    """Say which commit was the tip at WHEN, and whether PATH existed in it.

    The tip of the default branch's first-parent history at WHEN (what
    `git rev-list -1 --first-parent --before=WHEN` says), and whether PATH existed in it:
    exit 0 if it did, 1 if it did not (as `test -e`). Times are ISO 8601, UTC."""
    from evlog import rendering

    s = settings(ctx)
    at = s.git_at(repo, when, path)
    if as_json:
        row = {"sha": at.sha, "committed_at": at.committed_at, "subject": at.subject, "pos": at.pos}
        if path is not None:
            row["existed"] = at.existed
        output.print_json({k: rendering.json_value(v) for k, v in row.items()})
    else:
        when_text = rendering.json_value(at.committed_at)
        line = f"{at.sha}  {when_text}  {at.subject}"
        if path is not None:
            line += f"\n{path}: {'exists' if at.existed else 'does not exist'} at that commit"
        print(line)
        output.stderr.print(f"(answered from {s.duckdb} in {at.took_ms:.2f} ms)")
    if path is not None and not at.existed:
        raise typer.Exit(1)  # as `test -e`: the answer is in the exit code too


@app.command()
def loadtest(
    quick: Annotated[
        bool, typer.Option("--quick", help="A few seconds, two small steps (CI).")
    ] = False,
    rates: Annotated[
        str | None, typer.Option(help="Offered rates, e.g. 1000,5000,20000 (events/s).")
    ] = None,
    seconds: Annotated[float | None, typer.Option(help="Measured seconds per step.")] = None,
    producers: Annotated[int, typer.Option(help="Producer processes.")] = 2,
    threads: Annotated[int, typer.Option(help="Threads per producer process.")] = 1,
    budget: Annotated[str, typer.Option(help="Budget for p99 read->visible.")] = "50ms",
    require_rate: Annotated[
        int | None,
        typer.Option(
            help="Exit 1 unless a step at this offered rate or more stayed within the budget"
            " and kept up (a threshold, as k6 has).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The summary as JSON on stdout.")] = False,
    summary_export: Annotated[
        Path | None, typer.Option(help="Also write the summary as JSON to this file.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for the report and chart.")] = Path(
        "loadtest"
    ),
) -> None:
    """Step the offered rate up until the pipeline breaks; report where.

    Writes a markdown report with a chart (latency percentiles vs offered rate), its JSON
    summary, and the breaking point in one sentence. Exit 1 when no step met the budget (not
    with --quick, whose seconds are too short to judge), or --require-rate was not reached."""
    from .loadtest import runner as lt

    argv = ["--producers", str(producers), "--threads", str(threads), "--out", str(out)]
    budget_ms = parse_duration_s(budget) * 1e3
    argv += ["--budget-ms", str(budget_ms)]
    argv += ["--quick"] if quick else []
    if rates:
        if not re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", rates):
            raise UsageError(f"--rates {rates!r}: comma-separated integers, e.g. 1000,5000")
        argv += ["--rates", rates.replace(" ", "")]
    argv += ["--seconds", str(seconds)] if seconds else []
    args = lt.complete(lt.parser().parse_args(argv), "evlog loadtest " + " ".join(sys.argv[2:]))
    steps = run(lt.run(args))
    summary = lt.summary(steps, args)
    if as_json:
        output.print_json(summary)
    else:
        print(summary["verdict"])
    if summary_export is not None:
        summary_export.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    sustained = summary["sustained_rate"]
    if not sustained and not quick:  # --quick's seconds are a smoke run, too short to judge
        fail(f"no step met the {budget_ms:g} ms budget")
    if require_rate is not None and sustained < require_rate:
        fail(
            f"required {require_rate:,} events/s within the {budget_ms:g} ms budget;"
            f" sustained {sustained:,} events/s"
        )


@app.command()
def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="Where to write (default: a new temp dir).")
    ] = None,
) -> None:
    """Run the main job on the bundled sample: ingest, project, query, latency.

    Works in a new temporary directory (or --workdir) and leaves the files there to explore."""
    from .demo import run_demo

    run(run_demo(workdir))


_DEBUG = [bool(os.environ.get("EVLOG_DEBUG"))]

app.add_typer(nats_app, name="nats")


@app.command("copy")
def copy_cmd(
    source: Annotated[str, typer.Option("--from", help="The log to copy: a file or nats:// URL.")],
    target: Annotated[str, typer.Option("--to", help="The log to copy into (made if new).")],
) -> None:
    """Copy a log into another: SQLite file to a JetStream cluster, or back.

    Every event in order (each stream's versions come out the same), then the sources'
    checkpoints (an ingest against the copy resumes where one against the original stopped)
    and the open dead letters. A copy stopped half way goes on where it stopped when run again;
    events already in the target are not appended twice."""
    from evlog.eventlog.copy import copy_log

    async def go() -> Any:
        async with (
            await open_log(source, writable=False) as src,
            await open_log(target) as dst,
        ):
            return await copy_log(src, dst)

    stats = run(go())
    resumed = f" (resumed after seq {stats.resumed_after})" if stats.resumed_after else ""
    output.say(
        f"copied {stats.events:,} events{resumed}, {stats.duplicates:,} already there,"
        f" {stats.checkpoints} source checkpoints, {stats.dead_letters} dead letters"
        f" -> {target}"
    )


# Examples shown at the end of each command's --help (tests/test_help.py runs each one's
# parsing, and checks every command has some).
EXAMPLES: dict[str, tuple[str, ...]] = {
    "ingest": (
        "evlog ingest chat.jsonl --stream-field channel --key-field id --time-field ts",
        "evlog ingest logs/ --include '*.log' --exclude 'archive/*' --read-from end",
        "evlog ingest ~/src/click --all --since 2024-01-01",
    ),
    "watch": (
        "evlog watch inbox/ --include '*.jsonl' --key-field id",
        "evlog watch /var/log/app --include '*.log' --read-from end --metrics-port 9464",
        "evlog watch inbox/ --ui 8765",
    ),
    "tail": ("evlog tail -n 20", "evlog tail --no-follow --json | jq .payload"),
    "status": ("evlog status", "evlog status --json | jq .source_checkpoints"),
    "deadletters": ("evlog deadletters", "evlog deadletters --source app.log --csv"),
    "deadletters retry": ("evlog deadletters retry app.log",),
    "deadletters purge": (
        "evlog deadletters purge --resolved",
        "evlog deadletters purge app.log --older-than 30d",
    ),
    "source reset": ("evlog source reset app.log",),
    "project": (
        "evlog project",
        "evlog project --follow --metrics-port 9464",
        "evlog project --follow --ui 8765",
    ),
    "ui": ("evlog ui", "evlog ui --port 8765 --budget 20ms"),
    "rebuild": ("evlog rebuild", "evlog rebuild messages --from 5000"),
    "query": (
        'evlog query "SELECT author, count(*) AS n FROM messages GROUP BY 1 ORDER BY n DESC"',
        'evlog query --nl "SELECT seq, payload FROM events" | jq .payload',
    ),
    "export": (
        "evlog export messages messages.parquet",
        "evlog export \"SELECT * FROM events WHERE stream = 'jsonl/chat'\" chat.jsonl",
    ),
    "snapshot": ("evlog snapshot now.duckdb && duckdb -readonly now.duckdb 'FROM messages'",),
    "latency": ("evlog latency --since 10m --budget 20ms", "evlog latency --by stream --json"),
    "git at": (
        "evlog git at ~/src/click 2020-01-01T00:00:00Z",
        "evlog git at git/click 2020-01-01 src/click/core.py && echo present",
    ),
    "loadtest": (
        "evlog loadtest --rates 1000,5000,10000,20000 --seconds 10",
        "evlog loadtest --quick --require-rate 500 --json > summary.json",
    ),
    "demo": ("evlog demo", "evlog demo --workdir /tmp/evlog-demo"),
    "projections": ("evlog projections", "evlog projections --json"),
    "nats up": ("evlog nats up --nodes 3 --dir ./nats",),
    "nats down": ("evlog nats down --dir ./nats",),
    "copy": (
        "evlog copy --from .evlog/events.db --to nats://127.0.0.1:4222",
        "evlog copy --from nats://127.0.0.1:4222 --to backup.db",
    ),
    "projection add": (
        "evlog projection add last_by_author.sql --check",
        "evlog projection add last_by_author.sql",
    ),
}


def _with_examples(group: typer.Typer, prefix: str = "") -> None:
    """Append EXAMPLES to each command's help (\\b keeps click from rewrapping them), and give
    each command its whole first line as the summary in lists (never cut mid-sentence)."""

    def document(info: Any, name: str) -> None:
        text = inspect.cleandoc(info.help or info.callback.__doc__ or "")
        info.short_help = text.split("\n", 1)[0]
        if lines := EXAMPLES.get(name, ()):
            text += "\n\nExamples:\n\n\b\n" + "\n".join(f"  {x}" for x in lines)
        info.help = text

    for command in group.registered_commands:
        assert command.callback is not None
        document(command, prefix + (command.name or command.callback.__name__.replace("_", "-")))
    for sub in group.registered_groups:
        if sub.typer_instance is None or not sub.name:
            continue
        summary = inspect.cleandoc(sub.typer_instance.info.help or "").split("\n", 1)[0]
        sub.typer_instance.info.short_help = summary or None
        callback = sub.typer_instance.registered_callback
        if callback is not None and callback.callback is not None:
            document(callback, prefix + sub.name)
        _with_examples(sub.typer_instance, f"{prefix}{sub.name} ")


_with_examples(app)


def main() -> None:
    """Console entry point, and the CLI's one error boundary: a failure is one line on stderr
    with a documented exit code (evlog/failures.py); --debug shows the traceback instead."""
    try:
        app(standalone_mode=True)
    except BaseException as raised:
        exc = first_cause(raised)  # a failure inside a task group: the failure itself
        if isinstance(exc, SystemExit):
            raise exc from None
        if isinstance(exc, Interrupted):
            raise SystemExit(EXIT_INTERRUPTED) from None
        if isinstance(exc, KeyboardInterrupt):
            fail("interrupted", EXIT_INTERRUPTED)
        if isinstance(exc, UsageError):
            fail(str(exc), EXIT_USAGE)
        if isinstance(exc, USER_ERRORS):
            fail(str(exc))
        if _DEBUG[0]:
            raise
        fail(explain(exc))
