"""`evlog serve`'s HTTP side (aiohttp): `POST /v1/events` takes records (a JSON object, a JSON
array, or NDJSON) mapped to events as `ingest` maps a JSONL file's lines, and answers once they
are committed with what happened to each; `/v1/hooks/<preset>` takes providers' webhooks
(adapters/webhooks.py), checked on the raw bytes before anything is parsed.

The checks come first and cost microseconds: a bearer token for /v1/events (compared in
constant time), a provider's signature for a hook, a body size limit (413). A request that
fails one stores nothing and is counted by reason. A full intake answers 503 with Retry-After;
nothing is acknowledged that is not committed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from evlog.adapters.fields import FieldMap
from evlog.adapters.records import RecordMapper
from evlog.adapters.webhooks import Delivery, Outcome, Refused
from evlog.eventlog import NewEvent
from evlog.eventlog.encoding import TOO_DEEP

from ..errors import EvlogError
from ..live.client import is_listening
from .counters import ServeCounters
from .intake import Busy, Intake

MAX_BODY_BYTES = 16 * 1024 * 1024
# The mapping a request may give as query parameters (unless the server fixed it at start).
REQUEST_MAPPING = ("stream", "stream_field", "type_field", "key_field", "time_field", "type")


@dataclass
class HttpSettings:
    token: str
    fields: FieldMap = field(default_factory=FieldMap)  # the mapping fixed at start
    hooks: Mapping[str, Callable[[Delivery], Outcome]] = field(default_factory=dict)
    max_body_bytes: int = MAX_BODY_BYTES
    # Bodies read and parsed at once at most (one larger body alone is always taken).
    max_taking_bytes: int = MAX_BODY_BYTES


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


class Rejected(Exception):
    """The whole body is not records (a JSON array that does not parse, ...)."""


def split_records(body: bytes) -> list[tuple[bytes, Any] | str]:
    """A body's records, in order: (raw JSON, value) each, or why that one is bad (NDJSON: a
    line that is not JSON). A JSON array is one record per element; a body that is one JSON
    value is one record; else it is NDJSON, one record per line."""
    text = body.strip()
    if not text:
        return []
    if text[:1] == b"[":
        try:
            values = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise Rejected(f"not a JSON array: {exc}") from None
        if not isinstance(values, list):
            raise Rejected("not a JSON array")
        out: list[tuple[bytes, Any] | str] = []
        for value in values:
            try:
                out.append((orjson.dumps(value), value))
            except orjson.JSONEncodeError:  # orjson writes 254 levels at most
                out.append(TOO_DEEP)
        return out
    with contextlib.suppress(orjson.JSONDecodeError):
        return [(text, orjson.loads(text))]
    out = []
    for number, line in enumerate(text.split(b"\n"), 1):
        line = line.strip()
        if not line:
            continue
        try:
            out.append((line, orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            out.append(f"line {number}: malformed JSON: {exc}")
    return out


def _mapping(settings: HttpSettings, query: Mapping[str, str]) -> FieldMap:
    """The fixed mapping, with what the request's query parameters add (one the server fixed
    cannot be changed by a request: ValueError)."""
    fixed = settings.fields
    given = {k: query[k] for k in REQUEST_MAPPING if query.get(k)}
    changes: dict[str, Any] = {}
    for name, value in given.items():
        attr = "event_type" if name == "type" else name
        current = getattr(fixed, attr)
        if current is not None and current != value:
            raise ValueError(f"{name} is fixed to {current!r} by the server")
        changes[attr] = value
    if not changes:
        return fixed
    return dataclasses.replace(fixed, **changes)


def make_app(intake: Intake, counters: ServeCounters, settings: HttpSettings) -> web.Application:
    token = f"Bearer {settings.token}".encode()
    taking = [0]  # bytes of request bodies being read and turned into events

    async def events(request: web.Request) -> web.Response:
        read_ns = time.time_ns()  # the latency clock starts as the request arrives
        given = request.headers.get("Authorization", "").encode()
        if not given:
            counters.refuse("events", 401, "no_token")
            return _json(401, {"error": "a bearer token is needed (Authorization: Bearer ...)"})
        if not hmac.compare_digest(given, token):
            counters.refuse("events", 401, "bad_token")
            return _json(401, {"error": "the token does not match"})
        # Before the body is read: the events waiting for a commit, and the bodies being read
        # and parsed (their size as the sender declares it), each within a bound, so that a
        # flood holds no more in memory than that.
        size = request.content_length or settings.max_body_bytes
        if intake.full or (taking[0] and taking[0] + size > settings.max_taking_bytes):
            intake.busy += 1
            counters.requests["events", 503] += 1
            return _json(503, {"error": "the intake is full"}, {"Retry-After": "1"})
        taking[0] += size
        try:
            return await take(request, read_ns)
        finally:
            taking[0] -= size

    async def take(request: web.Request, read_ns: int) -> web.Response:
        """A request past its checks: its records read, mapped and appended."""
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            counters.refuse("events", 413, "too_large")
            return _json(413, {"error": f"the body is over {settings.max_body_bytes} bytes"})
        try:
            fields = _mapping(settings, request.query)
            records = split_records(body)
        except (ValueError, Rejected) as exc:
            counters.refuse("events", 400, "bad_request")
            return _json(400, {"error": str(exc)})
        mapper = RecordMapper(fields, fields.stream or "http")
        idempotency = request.headers.get("Idempotency-Key")
        meta = {"via": "http", "peer": request.remote or ""}
        batch: list[tuple[int, NewEvent]] = []  # (the record's index, its event)
        rejected: list[dict[str, Any]] = []
        for i, record in enumerate(records):
            if isinstance(record, str):
                rejected.append({"index": i, "reason": record})
                continue
            raw, value = record
            key = None
            if idempotency:
                key = f"http:{idempotency}" if len(records) == 1 else f"http:{idempotency}:{i}"
            try:
                event, _ = mapper.event(value, raw, key, meta, read_ns)
            except ValueError as exc:
                rejected.append({"index": i, "reason": str(exc)})
                continue
            batch.append((i, event))
        if not batch:
            counters.rejected_records += len(rejected)
            status = 400 if rejected else 200
            counters.requests["events", status] += 1
            empty = {"appended": 0, "duplicates": 0, "first_seq": 0, "last_seq": 0}
            return _json(status, {**empty, "rejected": rejected})
        try:
            done = await intake.append([e for _, e in batch])
        except Busy as exc:
            counters.requests["events", 503] += 1
            headers = {"Retry-After": str(exc.retry_after_s)}
            return _json(503, {"error": str(exc)}, headers)
        rejected += [{"index": batch[i][0], "reason": why} for i, why in done.invalid]
        rejected.sort(key=lambda r: int(r["index"]))
        counters.rejected_records += len(rejected)
        counters.requests["events", 200] += 1
        return _json(200, {**done.to_json(), "rejected": rejected})

    async def hook(request: web.Request) -> web.Response:
        read_ns = time.time_ns()
        name = request.match_info["name"]
        handle = settings.hooks.get(name)
        route = f"hooks/{name}" if handle else "hooks"
        if handle is None:
            counters.refuse(route, 404, "unknown_hook")
            return _json(404, {"error": f"no hook {name!r} here (serve --hook {name})"})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            counters.refuse(route, 413, "too_large")
            return _json(413, {"error": f"the body is over {settings.max_body_bytes} bytes"})
        delivery = Delivery(
            request.method, request.headers, request.query, body, read_ns, time.time()
        )
        try:
            outcome = handle(delivery)
        except Refused as refused:
            counters.refuse(route, refused.status, refused.reason)
            return _json(refused.status, {"error": str(refused)})
        if outcome.reply is not None:
            counters.requests[route, 200] += 1
            return web.Response(body=outcome.reply.body, content_type=outcome.reply.content_type)
        try:
            done = await intake.append(outcome.events)
        except Busy as exc:
            counters.requests[route, 503] += 1
            return _json(503, {"error": str(exc)}, {"Retry-After": str(exc.retry_after_s)})
        counters.requests[route, 200] += 1
        answer: dict[str, Any] = done.to_json()
        if done.invalid:  # events the log cannot store (nested too deep, too large)
            answer["rejected"] = [{"index": i, "reason": why} for i, why in done.invalid]
            counters.rejected_records += len(done.invalid)
        return _json(200, answer)

    async def health(request: web.Request) -> web.Response:
        return _json(200, {"ok": True, "pending": intake.pending})

    app = web.Application(client_max_size=settings.max_body_bytes)
    app.router.add_post("/v1/events", events)
    app.router.add_route("*", "/v1/hooks/{name}", hook)
    app.router.add_get("/v1/health", health)
    return app


@contextlib.asynccontextmanager
async def serve_http(
    intake: Intake,
    counters: ServeCounters,
    settings: HttpSettings,
    host: str,
    port: int | None,
    unix_path: Path | None = None,
) -> AsyncIterator[tuple[str, int] | None]:
    """The HTTP side on host:port (None: not on TCP) and on the Unix socket `unix_path` (the
    same protocol, for producers on this host: the file's permissions keep it to its owner)
    while the context is open; yields the bound TCP address."""
    runner = web.AppRunner(make_app(intake, counters, settings), access_log=None)
    await runner.setup()
    bound = None
    try:
        if port is not None:
            site = web.TCPSite(runner, host, port, reuse_address=True)
            await site.start()
            server = site._server  # aiohttp keeps the bound sockets here
            sockets = getattr(server, "sockets", None) or []
            address = sockets[0].getsockname() if sockets else (host, port)
            bound = (str(address[0]), int(address[1]))
        if unix_path is not None:
            await asyncio.to_thread(_claim, unix_path)
            unix = web.UnixSite(runner, str(unix_path))
            await unix.start()
            os.chmod(unix_path, 0o600)
        yield bound
    finally:
        await runner.cleanup()
        if unix_path is not None:
            await asyncio.to_thread(_remove, unix_path)


def _claim(path: Path) -> None:
    """Take the socket path: refused if another process listens there; a file left by one
    that died is removed (blocking)."""
    if is_listening(path):
        raise EvlogError(f"another evlog serve takes events at {path}")
    _remove(path)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
