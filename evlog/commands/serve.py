"""`evlog serve`: take events pushed over HTTP, providers' webhooks and syslog, and keep DuckDB
fresh (evlog/serve/)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..runtime import UsageError, run, until_signalled
from .common import (
    METRICS_HOST,
    METRICS_PORT,
    O_KEY_FIELD,
    O_STREAM,
    O_STREAM_FIELD,
    O_TIME_FIELD,
    O_TIME_FORMAT,
    O_TYPE,
    O_TYPE_FIELD,
    UI_HOST,
    UI_PORT,
    app,
    examples,
    settings,
)


@app.command()
@examples(
    "evlog serve --port 8080 --key-field id",
    "evlog serve --hook slack --hook github --host 0.0.0.0 --ui 8765",
    "evlog serve --port 8080 --syslog-udp 5514 --syslog-tcp 5514 --metrics-port 9464",
)
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless you say).")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option(help="HTTP port: POST /v1/events, /v1/hooks/<preset> (0: any free).")
    ] = 8080,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="A file holding the bearer token of /v1/events (else EVLOG_SERVE_TOKEN, else"
            " a random one, printed at start).",
            show_default=False,
        ),
    ] = None,
    hook: Annotated[
        list[str] | None,
        typer.Option(
            "--hook",
            help="Serve a provider's webhooks: slack, whatsapp, telegram, github or standard"
            " (repeatable; its secret from the environment: docs/push.md).",
            show_default=False,
        ),
    ] = None,
    syslog_udp: Annotated[
        int | None, typer.Option(help="Take syslog over UDP on this port.", show_default=False)
    ] = None,
    syslog_tcp: Annotated[
        int | None,
        typer.Option(help="Take syslog over TCP (RFC 6587) on this port.", show_default=False),
    ] = None,
    syslog_host: Annotated[str, typer.Option(help="Address of the syslog listeners.")] = (
        "127.0.0.1"
    ),
    stream: Annotated[str | None, O_STREAM] = None,
    stream_field: Annotated[str | None, O_STREAM_FIELD] = None,
    type_field: Annotated[str | None, O_TYPE_FIELD] = None,
    key_field: Annotated[str | None, O_KEY_FIELD] = None,
    time_field: Annotated[str | None, O_TIME_FIELD] = None,
    time_format: Annotated[str | None, O_TIME_FORMAT] = None,
    event_type: Annotated[str | None, O_TYPE] = None,
    max_body: Annotated[int, typer.Option(help="The largest request body, in bytes (413).")] = (
        16 * 1024 * 1024
    ),
    max_pending: Annotated[
        int, typer.Option(help="Events waiting for their commit at most; past it, 503.")
    ] = 50_000,
    metrics_port: Annotated[int | None, METRICS_PORT] = None,
    metrics_host: Annotated[str, METRICS_HOST] = "127.0.0.1",
    ui_port: Annotated[int | None, UI_PORT] = None,
    ui_host: Annotated[str, UI_HOST] = "127.0.0.1",
) -> None:
    """Take events pushed over HTTP, webhooks and syslog, and keep DuckDB fresh, live.

    POST /v1/events takes a JSON object, a JSON array or NDJSON, mapped as `ingest` maps a JSONL
    file (the mapping options here, or as query parameters); the answer comes once the events
    are committed and says what was appended, what was a duplicate (an Idempotency-Key or a
    --key-field seen before) and which records were rejected and why. A full intake answers
    503 with Retry-After. docs/push.md has each provider's setup and curl examples."""
    from ..live.exposure import Exposure
    from ..serve.server import ServeOptions

    token = os.environ.get("EVLOG_SERVE_TOKEN")
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise UsageError(f"--token-file {token_file}: {exc.strerror}") from None
        if not token:
            raise UsageError(f"--token-file {token_file} is empty")
    s = settings(ctx)
    options = ServeOptions(
        host=host, port=port, token=token, hooks=tuple(hook or ()),
        syslog_udp=syslog_udp, syslog_tcp=syslog_tcp, syslog_host=syslog_host,
        max_body_bytes=max_body, max_pending=max_pending,
        fields=s.field_map(
            stream=stream, stream_field=stream_field, type_field=type_field,
            key_field=key_field, time_field=time_field, time_format=time_format,
            event_type=event_type,
        ),
    )  # fmt: skip
    serving = s.serve(options, exposure=Exposure(metrics_port, metrics_host, ui_port, ui_host))
    run(until_signalled(serving))
