"""The JetStream calls the log needs, on nats-py: connect with one-line errors, make the stream,
direct gets (one message, or a batch from a sequence), and one atomic batch publish (ADR-50:
`Nats-Batch-Id` / `-Sequence` / `-Commit`), which nats-py does not wrap."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from ..errors import EventLogError

try:
    import nats
    import nats.errors
    from nats.aio.client import Client
    from nats.aio.msg import Msg
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise EventLogError("a nats:// log needs the nats extra: pip install 'evlog[nats]'") from exc

log_ = logging.getLogger("evlog.jetstream")

MAX_BATCH = 1000  # the server's limit on an atomic batch (messages)
REQUEST_TIMEOUT_S = 5.0
# Errors the server answers a publish with (err_code).
WRONG_LAST_SEQUENCE = (10071, 10164)  # another writer moved the subject first
DUPLICATE_IN_BATCH = 10201
STREAM_NOT_FOUND = 10059
REPLICAS_UNSUPPORTED = (10074, 10023)  # not clustered / not enough servers


@dataclass(frozen=True, slots=True)
class Target:
    """A `nats://host:port[,host:port...][?stream=NAME&replicas=N&window=S&outage=S&linger=MS]`
    URL: the stream (EVLOG), its replicas when made (3, or 1 on a single server), its duplicate
    window (120 s), how long an append waits out a cluster without a leader (60 s), and the
    shortest time between two atomic batches of one producer (5 ms; 0: no wait)."""

    url: str
    servers: list[str]
    stream: str
    replicas: int | None
    duplicate_window_s: float
    outage_s: float = 60.0  # how long an append retries while no stream leader answers
    linger_s: float = 0.005  # the least time between two batches' starts while appends flow

    @classmethod
    def parse(cls, url: str, default_stream: str) -> Target:
        scheme, _, rest = url.partition("://")
        hosts, _, query = rest.partition("?")
        hosts = hosts.rstrip("/")
        if not hosts:
            raise EventLogError(f"{url}: name at least one server (nats://host:4222)")
        servers = []
        for host in hosts.split(","):
            host = host.strip().removeprefix(f"{scheme}://")
            if not host:
                continue
            if ":" not in host.rsplit("]", 1)[-1]:
                host += ":4222"
            servers.append(f"{scheme}://{host}")
        options = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            replicas = int(options["replicas"]) if "replicas" in options else None
            window = float(options.get("window", 120))
            outage = float(options.get("outage", 60))
            linger = float(options.get("linger", 5)) / 1000
        except ValueError as exc:
            raise EventLogError(f"{url}: {exc}") from None
        stream = options.get("stream", default_stream)
        if not stream.replace("_", "").replace("-", "").isalnum():
            raise EventLogError(f"{url}: stream name {stream!r}: letters, digits, - and _ only")
        return cls(url, servers, stream, replicas, window, outage, linger)


class PublishError(EventLogError):
    """The server refused a publish: `code` is its err_code."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"JetStream refused the batch: {description} ({code})")
        self.code = code


async def connect(target: Target) -> Client:
    """A connection that reconnects forever once made; one that cannot be made at all is an
    EventLogError naming the servers (a user's mistake or a cluster that is down: one line)."""
    nc: Client | None = None

    async def on_error(exc: Exception) -> None:
        log_.debug("nats: %s", exc)

    async def on_disconnect() -> None:
        if nc is not None and not (nc.is_closed or nc.is_draining):
            log_.warning("nats: connection lost; reconnecting to %s", ", ".join(target.servers))

    try:
        nc = await nats.connect(
            servers=target.servers,
            connect_timeout=2,
            allow_reconnect=True,
            max_reconnect_attempts=2,  # the first connect: each server twice, then an error
            reconnect_time_wait=0.25,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            pending_size=64 * 1024 * 1024,
        )
        # Once connected, reconnect forever (appends wait out an outage up to `outage_s`).
        # nats-py has one setting for both, and with -1 a first connect never gives up.
        nc.options["max_reconnect_attempts"] = -1
        return nc
    except (OSError, nats.errors.Error, TimeoutError) as exc:
        why = str(exc) or type(exc).__name__
        raise EventLogError(
            f"{target.url}: no NATS server answered ({why}); start one with `evlog nats up`"
        ) from None


async def api(nc: Client, subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JetStream API request; the reply as a dict (its `error`, if any, left in it)."""
    payload = b"" if body is None else orjson.dumps(body)
    msg = await nc.request(subject, payload, timeout=REQUEST_TIMEOUT_S)
    reply: dict[str, Any] = orjson.loads(msg.data)
    return reply


async def ensure_stream(nc: Client, target: Target, subjects: str) -> dict[str, Any]:
    """Create the log's stream if it is not there (replicated on up to 3 servers unless the URL
    says `replicas=N`); returns its info."""
    name = target.stream
    info = await api(nc, f"$JS.API.STREAM.INFO.{name}")
    if "error" not in info:
        return info
    if info["error"].get("err_code") != STREAM_NOT_FOUND:
        raise EventLogError(f"{target.url}: {info['error'].get('description')}")
    config: dict[str, Any] = {
        "name": name,
        "subjects": [subjects],
        "retention": "limits",
        "storage": "file",
        "discard": "old",
        "allow_atomic": True,
        "allow_direct": True,
        "duplicate_window": int(target.duplicate_window_s * 1e9),
    }
    for replicas in [target.replicas] if target.replicas else [3, 1]:
        reply = await api(nc, f"$JS.API.STREAM.CREATE.{name}", {**config, "num_replicas": replicas})
        error = reply.get("error")
        if error is None:
            log_.info("created JetStream stream %s with %d replicas", name, replicas)
            return reply
        if target.replicas or error.get("err_code") not in REPLICAS_UNSUPPORTED:
            if "already in use" in str(error.get("description")):  # made by another process
                return await api(nc, f"$JS.API.STREAM.INFO.{name}")
            raise EventLogError(f"{target.url}: cannot create stream {name}: {error}")
    raise EventLogError(f"{target.url}: cannot create stream {name}")


@dataclass(slots=True)
class Stored:
    """A message read back: its stream sequence, subject, stored time, headers and body."""

    seq: int
    subject: str
    time_ns: int
    headers: dict[str, str]
    data: bytes


def _stored(msg: Msg) -> Stored | None:
    h = msg.headers or {}
    if "Nats-Sequence" not in h:
        return None  # a status (no message, end of batch)
    return Stored(
        int(h["Nats-Sequence"]), h["Nats-Subject"], nats_time_ns(h["Nats-Time-Stamp"]), h, msg.data
    )


_SECONDS: dict[str, int] = {}


def nats_time_ns(stamp: str) -> int:
    """`2026-12-06T13:42:48.954610303Z` as ns since the epoch (the server keeps ns)."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    seconds = _SECONDS.get(head)
    if seconds is None:
        if len(_SECONDS) > 1024:
            _SECONDS.clear()
        when = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
        seconds = _SECONDS[head] = int(when.timestamp())
    return seconds * 1_000_000_000 + int((frac + "000000000")[:9])


async def direct_last(nc: Client, stream: str, subject: str) -> Stored | None:
    """The last message on `subject` (wildcards allowed), or None."""
    msg = await nc.request(
        f"$JS.API.DIRECT.GET.{stream}",
        orjson.dumps({"last_by_subj": subject}),
        timeout=REQUEST_TIMEOUT_S,
    )
    return _stored(msg)


async def direct_seq(nc: Client, stream: str, seq: int) -> Stored | None:
    """The message at `seq`, or None."""
    msg = await nc.request(
        f"$JS.API.DIRECT.GET.{stream}", orjson.dumps({"seq": seq}), timeout=REQUEST_TIMEOUT_S
    )
    return _stored(msg)


async def direct_batch(
    nc: Client, stream: str, subject: str, start_seq: int, limit: int
) -> list[Stored]:
    """Up to `limit` messages on `subject` from `start_seq` on, in order (one request)."""
    inbox = nc.new_inbox()
    got: list[Stored] = []
    done = asyncio.get_running_loop().create_future()

    async def on_msg(msg: Msg) -> None:
        stored = _stored(msg)
        if stored is None:
            if not done.done():
                done.set_result(None)
        else:
            got.append(stored)

    sub = await nc.subscribe(inbox, cb=on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1)
    try:
        request = {"seq": max(1, start_seq), "batch": limit, "next_by_subj": subject}
        await nc.publish(f"$JS.API.DIRECT.GET.{stream}", orjson.dumps(request), reply=inbox)
        async with asyncio.timeout(REQUEST_TIMEOUT_S * 2):
            await done
    finally:
        await sub.unsubscribe()
    return got


async def stream_info(
    nc: Client, stream: str, subjects_filter: str | None = None
) -> dict[str, Any]:
    """The stream's info; with `subjects_filter`, its `state.subjects` counts every matching
    subject (all pages)."""
    body: dict[str, Any] = {}
    if subjects_filter:
        body["subjects_filter"] = subjects_filter
    info = await api(nc, f"$JS.API.STREAM.INFO.{stream}", body or None)
    if "error" in info:
        raise EventLogError(f"stream {stream}: {info['error'].get('description')}")
    subjects = dict(info.get("state", {}).get("subjects") or {})
    while subjects_filter and info.get("total", 0) > len(subjects):
        page = await api(nc, f"$JS.API.STREAM.INFO.{stream}", {**body, "offset": len(subjects)})
        more = page.get("state", {}).get("subjects") or {}
        if not more:
            break
        subjects.update(more)
    info.setdefault("state", {})["subjects"] = subjects
    return info


@dataclass(slots=True)
class Outgoing:
    """One message to publish: subject, body, and its JetStream headers (Msg-Id, expected)."""

    subject: str
    data: bytes
    headers: dict[str, str]


_NEWLINES = str.maketrans({"\r": " ", "\n": " "})  # as nats-py does to header values


def hpub_frames(part: Sequence[Outgoing], batch_id: str) -> bytes:
    """The NATS protocol frames (HPUB) of a batch's messages, its batch headers included: one
    buffer for the whole batch. nats-py's `publish` costs ~23 µs a message in Python (header
    checks, one command each); this is the bulk path's largest cost."""
    frames = []
    tail = f"Nats-Batch-Id: {batch_id}\r\nNats-Batch-Sequence: "
    for i, m in enumerate(part, 1):
        head = "NATS/1.0\r\n"
        for k, v in m.headers.items():
            if "\n" in v or "\r" in v:
                v = v.translate(_NEWLINES)
            head += f"{k}: {v}\r\n"
        hdr = f"{head}{tail}{i}\r\n\r\n".encode()
        size = len(hdr)
        frames.append(
            b"HPUB %s %d %d\r\n%s%s\r\n"
            % (m.subject.encode(), size, size + len(m.data), hdr, m.data)
        )
    return b"".join(frames)


async def publish_atomic(nc: Client, part: Sequence[Outgoing]) -> int:
    """Publish `part` (≤ MAX_BATCH messages) as one atomic batch; returns the sequence of its
    last message (the others precede it, contiguous). Raises PublishError with the server's
    reason, or the client's timeout/no-responders errors when no leader answered."""
    batch_id = uuid.uuid4().hex
    *body, last = part
    if body:
        # Written into nats-py's outgoing buffer as one command (what `publish` does per
        # message), so a reconnect replays it like any publish.
        await nc._send_command(hpub_frames(body, batch_id))
    headers = {
        **last.headers,
        "Nats-Batch-Id": batch_id,
        "Nats-Batch-Sequence": str(len(part)),
        "Nats-Batch-Commit": "1",
    }
    msg = await nc.request(last.subject, last.data, timeout=REQUEST_TIMEOUT_S, headers=headers)
    ack = orjson.loads(msg.data)
    error = ack.get("error")
    if error:
        raise PublishError(int(error.get("err_code", 0)), str(error.get("description")))
    if ack.get("count") != len(part):
        raise PublishError(0, f"the server stored {ack.get('count')} of {len(part)} messages")
    return int(ack["seq"])


async def publish_one(nc: Client, out: Outgoing) -> tuple[int, bool]:
    """Publish one message, waiting for its ack: (sequence, was a duplicate)."""
    msg = await nc.request(out.subject, out.data, timeout=REQUEST_TIMEOUT_S, headers=out.headers)
    ack = orjson.loads(msg.data)
    error = ack.get("error")
    if error:
        raise PublishError(int(error.get("err_code", 0)), str(error.get("description")))
    return int(ack["seq"]), bool(ack.get("duplicate"))


TRANSIENT = (nats.errors.TimeoutError, nats.errors.NoRespondersError, TimeoutError)
