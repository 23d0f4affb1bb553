"""What every command shares: the typer app and its root options (a Workspace per run), the
options several commands take, output format flags, and the `examples` decorator that puts a
command's examples at the end of its help."""

from __future__ import annotations

import inspect
import os
import sys
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from evlog.eventlog import Durability
from evlog.eventlog.target import is_nats

from .. import output
from ..failures import (
    FILES,
)
from ..paths import DEFAULT_DB, duckdb_path_for, find_log
from ..runtime import UsageError
from ..workspace import Workspace

# Adapters, the projector (DuckDB, Arrow) and the live servers are imported inside the commands
# that use them: every command starts without them (docs/performance.md#cli-start).
if TYPE_CHECKING:
    from evlog.projector import Progress
    from evlog.projector.registry import Catalog


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
    if log is not None and not log.strip():
        raise UsageError("--log is empty: give a nats:// URL or a file path (or leave it out)")
    if log is not None and not is_nats(log):
        db, log = Path(log), None
    if log is None and db == DEFAULT_DB and not db.exists():
        found = find_log()  # as git finds .git: the nearest .evlog above
        if found is not None:
            output.say(f"using {found}")
            db = found
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
O_AUTHOR_FIELD = typer.Option(
    help="Record field with a message's author (dotted path; the chat analytics read it).",
    show_default=False,
)
O_TEXT_FIELD = typer.Option(
    help="Record field with a message's text (dotted path; the chat analytics read it).",
    show_default=False,
)
O_ENCODING = typer.Option(
    help="The files' text encoding when not UTF-8 (latin-1, cp1252, iso-8859-15, ...).",
    show_default=False,
)
O_TIME_FORMAT = typer.Option(
    help="How --time-field is written: strptime directives ('%d/%b/%Y:%H:%M:%S %z'; no zone:"
    " UTC), or epoch, epoch_ms, epoch_us, epoch_ns.",
    show_default=False,
)


O_TYPE = typer.Option("--type", help="The event type of every record.")


O_PATTERN = typer.Option(help="log: a regex with named groups, which become fields.")


O_LOG_FORMAT = typer.Option(
    "--format",
    help="log: the lines' format (default: told from the first lines): access (Apache/nginx"
    " common or combined), apache_error, nginx_error, syslog, rfc5424, json, logfmt; plain"
    " for none.",
    show_default=False,
)


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
    help="whatsapp, log: the zone of times written without one (e.g. Europe/Berlin; a WhatsApp"
    " export's, Apache's error log's, syslog's); default UTC: such times are stored as if UTC.",
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


def _duration(text: str | None) -> float | None:
    from ..latency_report import parse_duration_s  # here: it loads the histograms

    return parse_duration_s(text, "s") if text else None


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


_DEBUG = [bool(os.environ.get("EVLOG_DEBUG"))]


F = TypeVar("F", bound=Callable[..., Any])


def examples(*lines: str) -> Callable[[F], F]:
    """Examples for the end of a command's --help, kept beside the command (tests run each
    one's parsing): appended to its docstring, `\\b` keeping click from rewrapping them."""

    def add(fn: F) -> F:
        fn.__doc__ = (
            inspect.cleandoc(fn.__doc__ or "")
            + "\n\nExamples:\n\n\b\n"
            + "\n".join(f"  {x}" for x in lines)
        )
        fn.examples = lines  # type: ignore[attr-defined]
        return fn

    return add
