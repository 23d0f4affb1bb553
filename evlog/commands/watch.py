"""`evlog watch`: ingest files as they change and keep DuckDB fresh (evlog/live/watch.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..latency_report import parse_duration_s
from ..runtime import run, until_signalled
from .common import (
    METRICS_HOST,
    METRICS_PORT,
    O_ADAPTER,
    O_AUTHOR_FIELD,
    O_DELIMITER,
    O_DETECT_TYPES,
    O_ENCODING,
    O_EXCLUDE,
    O_IGNORE_OLDER,
    O_INCLUDE,
    O_KEY_FIELD,
    O_LOG_FORMAT,
    O_PATTERN,
    O_READ_FROM,
    O_STREAM,
    O_STREAM_FIELD,
    O_TEXT_FIELD,
    O_TIME_FIELD,
    O_TIME_FORMAT,
    O_TYPE,
    O_TYPE_FIELD,
    O_TZ,
    UI_HOST,
    UI_PORT,
    StartAt,
    _duration,
    app,
    examples,
    settings,
)


@app.command()
@examples(
    "evlog watch inbox/ --include '*.jsonl' --key-field id",
    "evlog watch /var/log/app --include '*.log' --read-from end --metrics-port 9464",
    "evlog watch inbox/ --ui 8765",
)
def watch(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Directories (or files) to watch.")],
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

    from ..ingesting import IngestOptions, checked_mapping
    from ..live.exposure import Exposure

    wanted = checked_mapping(
        adapter=adapter, stream=stream, stream_field=stream_field, type_field=type_field,
        key_field=key_field, time_field=time_field, time_format=time_format,
        author_field=author_field, text_field=text_field, encoding=encoding,
        event_type=event_type, pattern=pattern, format=log_format,
        tz=tz, delimiter=delimiter, detect_types=detect_types,
    )  # fmt: skip
    options = IngestOptions(
        wanted, tuple(include or ()), tuple(exclude or ()), _duration(ignore_older_than),
        start_at_end=read_from is StartAt.end,
    )  # fmt: skip
    watching = settings(ctx).watch(
        paths, options, multiline_timeout_s=parse_duration_s(multiline_timeout, "s"),
        exposure=Exposure(metrics_port, metrics_host, ui_port, ui_host),
    )  # fmt: skip
    run(until_signalled(watching))
