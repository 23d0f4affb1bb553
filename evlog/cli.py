"""`evlog` commands (typer). Each command parses options, calls the library, and prints."""

from __future__ import annotations

import contextlib
import sys
import time
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from adapters import FieldMap, IngestStats, InputError, ingest, make_adapter
from eventlog import Durability, EventLog, EventLogError

from . import output
from .paths import DEFAULT_DB, duckdb_path_for
from .runtime import UserError, fail, run

app = typer.Typer(
    name="evlog",
    help="Durable, replayable event log (SQLite WAL) with fresh DuckDB analytics over it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass(slots=True)
class Settings:
    db: Path
    duckdb: Path
    durability: Durability


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        Path, typer.Option(envvar="EVLOG_DB", help="The event log file (SQLite).")
    ] = DEFAULT_DB,
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
) -> None:
    ctx.obj = Settings(db=db, duckdb=duckdb_path_for(db, duckdb), durability=durability)


# -- ingest -------------------------------------------------------------------------------------

MAX_ERROR_LINES = 20


@app.command("ingest")
def ingest_cmd(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files to read ('-' for stdin).")],
    adapter: Annotated[
        str | None, typer.Option("--adapter", "-a", help="Force an adapter (default: detect).")
    ] = None,
    stream: Annotated[str | None, typer.Option(help="Stream name (default: file name).")] = None,
    stream_field: Annotated[
        str | None, typer.Option(help="Record field naming the stream.")
    ] = None,
    type_field: Annotated[str | None, typer.Option(help="Record field naming the type.")] = None,
    key_field: Annotated[str | None, typer.Option(help="Record field with a unique id.")] = None,
    time_field: Annotated[
        str | None, typer.Option(help="Record field with the event time.")
    ] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Event type to use.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout.")] = False,
) -> None:
    """Append the records of PATHS to the log; re-running appends only what is new."""
    s = settings(ctx)
    fields = FieldMap(
        stream=stream,
        stream_field=stream_field,
        type_field=type_field,
        key_field=key_field,
        time_field=time_field,
        event_type=event_type,
    )
    adapters = [make_adapter(p, adapter=adapter, fields=fields) for p in paths]
    total = run(_ingest_all(s, adapters))
    lat = sorted(total.commit_latencies_ns)
    p50 = lat[len(lat) // 2] if lat else 0
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0
    rate = total.appended / total.seconds if total.seconds else 0.0
    summary = {
        "appended": total.appended,
        "duplicates": total.duplicates,
        "dead_letters": total.dead_letters,
        "seconds": round(total.seconds, 4),
        "events_per_second": round(rate),
        "commit_p50_ms": round(p50 / 1e6, 3),
        "commit_p99_ms": round(p99 / 1e6, 3),
        "db": str(s.db),
    }
    if as_json:
        output.print_json(summary)
    else:
        output.stderr.print(
            f"appended {total.appended} events, skipped {total.duplicates} duplicates, "
            f"dead-lettered {total.dead_letters} in {total.seconds:.2f} s ({rate:,.0f} events/s); "
            f"commit latency p50 {output.ms(p50)} p99 {output.ms(p99)}"
        )


async def _ingest_all(s: Settings, adapters: list[Any]) -> IngestStats:
    total = IngestStats(source="*")
    started = time.perf_counter()
    shown = 0

    def report(batch: Any, _stats: IngestStats) -> None:
        nonlocal shown
        for dl in batch.dead_letters:
            if shown < MAX_ERROR_LINES:
                output.stderr.print(f"{dl.position}: {dl.error}", markup=False, highlight=False)
            shown += 1

    async with await EventLog.open(s.db, durability=s.durability) as log:
        for adapter in adapters:
            total.merge(await ingest(log, adapter, on_batch=report))
    if shown > MAX_ERROR_LINES:
        output.stderr.print(
            f"... and {shown - MAX_ERROR_LINES} more bad records: see `evlog deadletters`"
        )
    total.seconds = time.perf_counter() - started
    return total


# -- reading the log ----------------------------------------------------------------------------


@app.command()
def tail(
    ctx: typer.Context,
    last: Annotated[int, typer.Option("--last", "-n", help="Show this many past events.")] = 10,
    follow: Annotated[bool, typer.Option(help="Keep printing new events.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print the last events, then new ones as they are committed (Ctrl-C to stop)."""
    s = settings(ctx)

    async def go() -> None:
        async with await EventLog.open(s.db, writable=False) as log:
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

    with contextlib.suppress(KeyboardInterrupt):
        run(go())


def _print_event(ev: Any, as_json: bool) -> None:
    if as_json:
        output.print_json(ev.to_dict())
    else:
        sys.stdout.write(f"{ev.seq}\t{ev.stream}@{ev.version}\t{ev.type}\t{ev.payload_json}\n")
        sys.stdout.flush()


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Log head, counts, sources and file sizes."""
    s = settings(ctx)

    async def go() -> tuple[Any, list[dict[str, Any]]]:
        async with await EventLog.open(s.db, writable=False) as log:
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


@app.command()
def deadletters(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: Annotated[int, typer.Option(help="Most recent N.")] = 50,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv")] = "table",
) -> None:
    """Records that could not be read: where they were, why, and their raw text."""
    s = settings(ctx)

    async def go() -> list[dict[str, Any]]:
        async with await EventLog.open(s.db, writable=False) as log:
            return await log.dead_letters(source=source, limit=limit)

    rows = run(go())
    cols = ["id", "position", "error", "raw"]
    output.print_rows(cols, [[r[c] for c in cols] for r in rows], fmt)


@app.command()
def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="Where to write (default: a new temp dir).")
    ] = None,
) -> None:
    """Run the main job on the bundled sample: ingest, project, query, latency report."""
    from .demo import run_demo

    run(run_demo(workdir))


def main() -> None:
    """Console entry point: user mistakes become one line on stderr and exit code 1."""
    try:
        app(standalone_mode=True)
    except (UserError, InputError, EventLogError) as exc:
        fail(str(exc))
