"""`evlog ingest`: parses its options, calls Workspace.ingest, renders the summary."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import output
from ..runtime import run

if TYPE_CHECKING:
    from evlog.adapters import IngestStats

    from ..ingesting import IngestSummary


from .common import (
    MAX_ERROR_LINES,
    O_ADAPTER,
    O_ALL,
    O_AUTHOR_FIELD,
    O_DELIMITER,
    O_DETECT_TYPES,
    O_ENCODING,
    O_EXCLUDE,
    O_IGNORE_OLDER,
    O_INCLUDE,
    O_KEY_FIELD,
    O_LOG_FORMAT,
    O_PATH,
    O_PATTERN,
    O_READ_FROM,
    O_SINCE,
    O_STREAM,
    O_STREAM_FIELD,
    O_TEXT_FIELD,
    O_TIME_FIELD,
    O_TIME_FORMAT,
    O_TYPE,
    O_TYPE_FIELD,
    O_TZ,
    O_VERBOSE,
    StartAt,
    _duration,
    app,
    examples,
    settings,
)


@app.command("ingest")
@examples(
    "evlog ingest chat.jsonl --stream-field channel --key-field id --time-field ts",
    "evlog ingest logs/ --include '*.log' --exclude 'archive/*' --read-from end",
    "evlog ingest ~/src/click --all --since 2024-01-01",
    "evlog ingest /var/log/apache2/error.log --format apache_error --tz Europe/Berlin",
)
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
    time_format: Annotated[str | None, O_TIME_FORMAT] = None,
    author_field: Annotated[str | None, O_AUTHOR_FIELD] = None,
    text_field: Annotated[str | None, O_TEXT_FIELD] = None,
    encoding: Annotated[str | None, O_ENCODING] = None,
    event_type: Annotated[str | None, O_TYPE] = None,
    pattern: Annotated[str | None, O_PATTERN] = None,
    log_format: Annotated[str | None, O_LOG_FORMAT] = None,
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
    max_dead_letter_ratio: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Exit 1 when a source had more than this share of its records dead-lettered"
            " (a wrong --pattern or --time-field); 1 never fails for it.",
        ),
    ] = 0.5,  # ingesting.DEFAULT_MAX_DEAD_LETTER_RATIO (not imported: it loads the adapters)
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
    (lines, in a built-in format told from the first lines or --format; '-' reads stdin),
    whatsapp (.txt or .zip export), slack (.zip export), git (a repository: commits, branch
    moves, first-parent history; a re-run reads only new commits).
    A directory is read recursively (hidden files skipped; --include/--exclude choose); files
    of no known format there are listed, not read.

    Each source's options are stored with its checkpoint: a re-run without options reads it as
    before; a re-run with other options is refused unless --remap. Every record read ends as an
    event, a duplicate or a dead letter (or is held back: a last line still being written), and
    the summary shows the sum. A source that fails is reported and the others go on (exit 1)."""
    from ..ingesting import IngestOptions, checked_mapping

    s = settings(ctx)
    wanted = checked_mapping(
        adapter=adapter, stream=stream, stream_field=stream_field, type_field=type_field,
        key_field=key_field, time_field=time_field, time_format=time_format,
        author_field=author_field, text_field=text_field, encoding=encoding,
        event_type=event_type, pattern=pattern, format=log_format,
        date_order=date_order, tz=tz, delimiter=delimiter, detect_types=detect_types,
        all_refs=all_refs, since=since, paths=git_paths,
    )  # fmt: skip
    options = IngestOptions(
        wanted, tuple(include or ()), tuple(exclude or ()), _duration(ignore_older_than),
        read_from is StartAt.end, remap, project_too, max_dead_letter_ratio,
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
    for one in summary.mostly_dead:
        output.say(
            f"evlog: error: {one.source}: {one.dead_letters} of {one.read} records were"
            f" dead-lettered (more than --max-dead-letter-ratio {summary.max_dead_letter_ratio:g});"
            " check its options: `evlog deadletters` says why each failed"
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
