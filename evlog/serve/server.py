"""`evlog serve` put together: the log, the HTTP side and the syslog listeners feeding it
through one intake, and the projector following the log into DuckDB in the same process (its
query socket, metrics and page as `watch` offers them), until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from evlog.adapters.fields import FieldMap
from evlog.adapters.webhooks import Delivery, Outcome, preset
from evlog.eventlog.store import open_log
from evlog.projector import Projector

from ..errors import EvlogError
from ..live.exposure import Exposure, exposed
from ..live.projection_files import ProjectionFiles
from .counters import ServeCounters
from .http import MAX_BODY_BYTES, HttpSettings, serve_http
from .intake import MAX_PENDING, Intake
from .syslog import serve_syslog


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """Where `evlog serve` listens and what it takes. `token`: the bearer token of /v1/events
    (None: a random one, printed at start); `hooks`: the webhook presets to serve (their
    secrets from `environ`); ports None: not served, 0: any free one."""

    host: str = "127.0.0.1"
    port: int | None = 8080
    token: str | None = None
    fields: FieldMap = field(default_factory=FieldMap)
    hooks: tuple[str, ...] = ()
    syslog_udp: int | None = None
    syslog_tcp: int | None = None
    syslog_host: str = "127.0.0.1"
    max_body_bytes: int = MAX_BODY_BYTES
    max_pending: int = MAX_PENDING
    unix_socket: bool = True  # also the Unix socket beside the log (`push_socket_path`)


def push_socket_path(db: Path | str) -> Path | None:
    """Where `evlog serve` takes HTTP from producers on this host: beside the log file (None
    for a log on a cluster: no file to be beside)."""
    if isinstance(db, str) and "://" in db:
        return None
    path = Path(db)
    return path.with_name(path.name + ".push.sock")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def hook_handlers(
    names: tuple[str, ...], environ: Mapping[str, str]
) -> dict[str, Callable[[Delivery], Outcome]]:
    """The presets asked for, with their secrets (EvlogError naming what is missing)."""
    try:
        return {name: preset(name, environ) for name in names}
    except ValueError as exc:
        raise EvlogError(str(exc)) from None


async def run_serve(
    db: Path | str,
    duckdb: Path,
    options: ServeOptions,
    environ: Mapping[str, str],
    exposure: Exposure | None = None,
    projection_files: ProjectionFiles | None = None,
    say: Callable[[str], None] | None = None,
) -> None:
    if say is None:
        from .. import output

        say = output.say
    hooks = hook_handlers(options.hooks, environ)
    token = options.token or secrets.token_urlsafe(24)
    for host in {options.host, options.syslog_host}:
        if not is_loopback(host):
            say(
                f"evlog: warning: listening on {host}, beyond this machine: put it behind a"
                " TLS-terminating proxy; only the token (and the hooks' signatures) keep"
                " others out"
            )
    catalog = await asyncio.to_thread(projection_files.load) if projection_files else None
    for line in catalog.problems if catalog else ():
        say(f"evlog: projection refused: {line}")
    counters = ServeCounters()
    async with (
        await open_log(db) as log,
        await Projector.open(log, duckdb, catalog.projections if catalog else None) as projector,
    ):
        intake = Intake(log, options.max_pending)
        settings = HttpSettings(token, options.fields, hooks, options.max_body_bytes)
        async with contextlib.AsyncExitStack() as stack:
            reach = await stack.enter_async_context(
                exposed(
                    projector,
                    duckdb,
                    exposure or Exposure(),
                    db,
                    lambda: counters.lines(intake),
                    lambda: {"push": counters.snapshot(intake)},
                )
            )
            where = []
            unix_path = push_socket_path(db) if options.unix_socket else None
            if options.port is not None or unix_path is not None:
                bound = await stack.enter_async_context(
                    serve_http(intake, counters, settings, options.host, options.port, unix_path)
                )
                if bound is not None:
                    host, port = bound
                    where.append(f"http://{host}:{port}/v1/events")
                    where += [f"http://{host}:{port}/v1/hooks/{name}" for name in hooks]
                if unix_path is not None:
                    where.append(f"http+unix://{unix_path}")
            listeners = await stack.enter_async_context(
                serve_syslog(
                    intake, counters, options.syslog_host, options.syslog_udp, options.syslog_tcp
                )
            )
            where += [f"syslog {t}://{h}:{p}" for t, (h, p) in sorted(listeners.items())]
            if not where:
                raise EvlogError("nothing to serve: give --port, --syslog-udp or --syslog-tcp")
            for line in reach.lines(f"serving {', '.join(where)} -> {db} -> {duckdb}"):
                say(line)
            if options.port is not None:
                shown = "(yours)" if options.token else token
                say(f"the token for /v1/events: {shown}")
            try:
                await projector.follow()  # runs until cancelled (Ctrl-C, SIGTERM)
            finally:
                say(
                    f"served: {intake.appended} events appended, {intake.duplicates} duplicates,"
                    f" {counters.rejected_records} records rejected,"
                    f" {sum(counters.refused.values())} requests refused"
                )
