"""`JetStreamLog`: the log on one JetStream stream, the `LogStore` of a `nats://` URL.

An append is one atomic batch (events, then dead letters, then the source checkpoint), split
into parts of at most 1,000 messages when larger; only the last part carries the checkpoint.
The log's sequence is the stream's; a stream's version is assigned here and checked by the server
(`Nats-Expected-Last-Subject-Sequence` on each event stream's first message of a part), so two
producers of one stream cannot interleave versions. Idempotency: each event's key is its
`Nats-Msg-Id` (the server drops a repeat within the stream's duplicate window) and, beyond the
window, an event stream whose last event carries a key of this append resumes after it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Self

import orjson

from ..encoding import (
    KEY,
    ROW_WIDTH,
    STREAM,
    VERSION,
    WRITTEN_NS,
    EncodedEvents,
    encode_events,
)
from ..envelope import (
    NO_RESULTS,
    AppendResults,
    DeadLetter,
    LogStats,
    NewEvent,
    SourceCheckpoint,
)
from ..errors import ConcurrencyError, EventLogError
from ..logbase import LogBase
from . import client
from .client import MAX_BATCH, TRANSIENT, Outgoing, PublishError, Stored, Target
from .feed import Feed
from .subjects import DEFAULT_STREAM, Layout

log_ = logging.getLogger("evlog.jetstream")

# The event body: the writer's insert parameters up to read_ns (eventlog/encoding.py order),
# then written_ns where the source gave one (bodies written before it have 9 values).
BODY_WIDTH = 9


def _body(row: list[Any], version: int) -> bytes:
    body = row[:BODY_WIDTH]
    body[VERSION] = version
    if row[WRITTEN_NS] is not None:
        body.append(row[WRITTEN_NS])
    return orjson.dumps(body)


@dataclass(slots=True)
class Head:
    """An event stream's last message: its log sequence, version and key."""

    seq: int
    version: int
    key: str | None


@dataclass(slots=True)
class _Item:
    """One message of an append: an event (by index) or a trailer (dead letter, resolution,
    checkpoint) whose body may point back at an event's sequence."""

    kind: str  # "event", "dead", "resolve", "checkpoint"
    index: int = -1  # event index (events, resolutions, the checkpoint's last event)
    subject: str = ""
    body: dict[str, Any] | None = None
    msg_id: str | None = None


class _Request:
    """One caller's append, waiting for the group commit."""

    __slots__ = ("checkpoint", "dead_letters", "events", "future", "resolves", "size")

    def __init__(
        self,
        events: EncodedEvents,
        checkpoint: SourceCheckpoint | None,
        dead_letters: Sequence[DeadLetter],
        resolves: Sequence[tuple[int, int]],
    ) -> None:
        self.events = events
        self.checkpoint = checkpoint
        self.dead_letters = dead_letters
        self.resolves = resolves
        self.size = len(events) + len(dead_letters) + len(resolves) + (checkpoint is not None)
        self.future: asyncio.Future[AppendResults] = asyncio.get_running_loop().create_future()


class JetStreamLog(LogBase):
    """One log on a JetStream stream. Open with `await JetStreamLog.open("nats://...")`."""

    contiguous_seqs = False

    def __init__(self, target: Target, nc: Any, writable: bool) -> None:
        self.target = target
        self.layout = Layout(target.stream)
        self._nc = nc
        self._js = nc.jetstream()
        self._writable = writable
        self._heads: dict[str, Head] = {}
        self._append_lock = asyncio.Lock()
        self._queue: list[_Request] = []
        self._committer: asyncio.Task[None] | None = None
        self._last_batch = float("-inf")  # loop time the last group commit started

    @classmethod
    async def open(cls, url: str, *, writable: bool = True) -> Self:
        """Connect to the cluster and make the stream if it is not there (writable)."""
        target = Target.parse(url, DEFAULT_STREAM)
        nc = await client.connect(target)
        try:
            if writable:
                await client.ensure_stream(nc, target, Layout(target.stream).all)
            else:
                await client.stream_info(nc, target.stream)
        except TRANSIENT:
            await nc.close()
            raise EventLogError(f"{url}: the servers answer but JetStream does not") from None
        except BaseException:
            await nc.close()
            raise
        return cls(target, nc, writable)

    @property
    def where(self) -> str:
        return self.target.url

    async def close(self) -> None:
        """Flush what was published and close the connection."""
        if not self._nc.is_closed:
            try:
                await self._nc.drain()
            except Exception:
                await self._nc.close()

    # -- appending -------------------------------------------------------------------------------

    async def append_many(
        self,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None = None,
        checkpoint: SourceCheckpoint | None = None,
        dead_letters: Sequence[DeadLetter] = (),
    ) -> AppendResults:
        """Append events (one atomic batch with the checkpoint and dead letters). With
        `expected_version`, all events must be of one stream, at that version now."""
        encoded = encode_events(events)
        if expected_version is not None and events:
            streams = {e.stream for e in events}
            if len(streams) != 1:
                raise ValueError("expected_version needs all events in one stream")
            async with self._append_lock:
                stream = streams.pop()
                head = await self._fetch_head(stream)
                if head.version != expected_version:
                    raise ConcurrencyError(stream, expected_version, head.version)
                cps = [] if checkpoint is None else [(checkpoint, len(encoded) - 1)]
                return await self._append_locked(encoded, cps, dead_letters, ())
        return await self.append_encoded(encoded, checkpoint=checkpoint, dead_letters=dead_letters)

    async def append_encoded(
        self,
        events: EncodedEvents,
        *,
        checkpoint: SourceCheckpoint | None = None,
        dead_letters: Sequence[DeadLetter] = (),
        resolves: Sequence[tuple[int, int]] = (),
    ) -> AppendResults:
        if not len(events) and checkpoint is None and not dead_letters:
            return NO_RESULTS
        if not self._writable:
            raise EventLogError(f"{self.where}: opened for reading only")
        request = _Request(events, checkpoint, dead_letters, resolves)
        self._queue.append(request)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued())
        return await request.future

    async def _commit_queued(self) -> None:
        """Group commit: the appends queued meanwhile go out as one atomic batch (as many as
        fit in one), so callers that append concurrently share a round trip to the leader.
        While appends keep coming, a batch starts no sooner than `linger` after the one before
        (unless a full batch waits): each batch costs the servers far more than a message
        (docs/scale-out.md), as Kafka's producer lingers (linger.ms, 5 ms by default). An
        append to an idle log goes out at once."""
        loop = asyncio.get_running_loop()
        while self._queue:
            wait = self._last_batch + self.target.linger_s - loop.time()
            if wait > 0 and sum(r.size for r in self._queue) < MAX_BATCH:
                await asyncio.sleep(wait)
            self._last_batch = loop.time()
            take: list[_Request] = []
            size = 0
            while self._queue and (not take or size + self._queue[0].size <= MAX_BATCH):
                size += self._queue[0].size
                take.append(self._queue.pop(0))
            params: list[Any] = []
            checkpoints: list[tuple[SourceCheckpoint, int]] = []
            dead: list[DeadLetter] = []
            resolves: list[tuple[int, int]] = []
            bounds = []
            for r in take:
                first = len(params) // ROW_WIDTH
                params += r.events.params
                last = len(params) // ROW_WIDTH
                bounds.append((first, last))
                if r.checkpoint is not None:
                    checkpoints.append((r.checkpoint, last - 1))
                dead += r.dead_letters
                resolves += [(dl_id, first + i) for dl_id, i in r.resolves]
            try:
                async with self._append_lock:
                    results = await self._append_locked(
                        EncodedEvents(params), checkpoints, dead, resolves
                    )
            except BaseException as exc:  # every caller of the batch gets the failure
                for r in take:
                    if not r.future.done():
                        r.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for r, (first, last) in zip(take, bounds, strict=True):
                if not r.future.done():
                    r.future.set_result(results[first:last])

    async def _append_locked(
        self,
        events: EncodedEvents,
        checkpoints: Sequence[tuple[SourceCheckpoint, int]],
        dead_letters: Sequence[DeadLetter],
        resolves: Sequence[tuple[int, int]],
    ) -> AppendResults:
        rows = list(events.rows())
        n = len(rows)
        seqs = [0] * n
        versions = [0] * n
        dup = [False] * n
        streams = [r[STREAM] for r in rows]
        await self._ensure_heads(set(streams))
        done = self._resume(rows, seqs, versions, dup)
        items = [_Item("event", i) for i in range(n) if not done[i]]
        items += [self._dead_item(d) for d in dead_letters]
        items += [
            _Item("resolve", idx, self.layout.resolution, {"id": dl_id}) for dl_id, idx in resolves
        ]
        for checkpoint, last_event in checkpoints:
            body = {"source": checkpoint.source, "position": checkpoint.position}
            items.append(
                _Item("checkpoint", last_event, self.layout.checkpoint(checkpoint.source), body)
            )
        pos = 0
        while pos < len(items):
            part = items[pos : pos + MAX_BATCH]
            await self._commit_part(part, rows, seqs, versions, dup)
            pos += len(part)
        return AppendResults(seqs, streams, versions, dup if any(dup) else None)

    def _dead_item(self, d: DeadLetter) -> _Item:
        raw: str | None
        if isinstance(d.raw, bytes):
            try:
                raw, encoding = d.raw.decode(), "utf-8"
            except UnicodeDecodeError:
                raw, encoding = base64.b64encode(d.raw).decode(), "base64"
        else:
            raw, encoding = d.raw, "text"
        body = {
            "source": d.source,
            "position": d.position,
            "error": d.error,
            "raw": raw,
            "raw_encoding": encoding,
            "key": d.key,
            "created_ns": time.time_ns(),
        }
        digest = hashlib.blake2b(
            orjson.dumps([d.source, d.position, d.error, raw]), digest_size=16
        ).hexdigest()
        return _Item("dead", -1, self.layout.dead_letter(d.source), body, f"dl-{digest}")

    def _resume(
        self, rows: list[list[Any]], seqs: list[int], versions: list[int], dup: list[bool]
    ) -> list[bool]:
        """Events already in the log past the duplicate window: a stream whose last event has
        a key of this append took this append's events up to it (an earlier run stopped between
        parts). Marks them duplicates (sequence: that last event's)."""
        done = [False] * len(rows)
        last_keys = {s: h.key for s, h in self._heads.items() if h.key is not None}
        if not last_keys:
            return done
        cut: dict[str, int] = {}
        for i, r in enumerate(rows):
            if r[KEY] is not None and last_keys.get(r[STREAM]) == r[KEY]:
                cut[r[STREAM]] = i
        for i, r in enumerate(rows):
            stream = r[STREAM]
            if stream in cut and i <= cut[stream]:
                head = self._heads[stream]
                done[i] = dup[i] = True
                seqs[i] = head.seq
                versions[i] = head.version
        return done

    def _outgoing(
        self, part: list[_Item], rows: list[list[Any]], seqs: list[int]
    ) -> tuple[list[Outgoing], list[int], dict[str, int]]:
        """The part's messages with versions from the current heads, each message's version
        (0 for trailers), and each stream's version after the part."""
        out: list[Outgoing] = []
        versions = [0] * len(part)
        next_version: dict[str, int] = {}
        subjects: dict[str, str] = {}
        for pos, item in enumerate(part):
            if item.kind == "event":
                row = rows[item.index]
                stream = row[STREAM]
                version = next_version.get(stream)
                headers: dict[str, str]
                if version is None:
                    head = self._heads[stream]
                    version = head.version
                    headers = {"Nats-Expected-Last-Subject-Sequence": str(head.seq)}
                    subjects[stream] = self.layout.event(stream)
                else:
                    headers = {}
                version += 1
                next_version[stream] = versions[pos] = version
                if row[KEY] is not None:
                    headers["Nats-Msg-Id"] = row[KEY]
                out.append(Outgoing(subjects[stream], _body(row, version), headers))
                continue
            body_ = dict(item.body or {})
            if item.kind in ("resolve", "checkpoint") and item.index >= 0:
                body_.update(self._ref(part, pos, item.index, seqs))
            headers = {"Nats-Msg-Id": item.msg_id} if item.msg_id else {}
            out.append(Outgoing(item.subject, orjson.dumps(body_), headers))
        return out, versions, next_version

    @staticmethod
    def _ref(part: list[_Item], pos: int, index: int, seqs: list[int]) -> dict[str, int]:
        """How a trailer names event `index`'s sequence: known (an earlier part), or how many
        messages back it is in this part (an atomic batch's sequences are contiguous)."""
        for back in range(pos, -1, -1):
            if part[back].kind == "event" and part[back].index == index:
                return {"back": pos - back}
        # the event went in an earlier part, or was already in the log
        return {"seq": seqs[index]} if seqs[index] else {}

    async def _commit_part(
        self,
        part: list[_Item],
        rows: list[list[Any]],
        seqs: list[int],
        versions: list[int],
        dup: list[bool],
    ) -> None:
        """Publish one part atomically, retrying through a leader election (bounded) and
        settling conflicts: another producer moved a stream (re-read heads, re-number), or the
        part holds a message the server already has (publish one at a time: exact duplicates)."""
        deadline = time.monotonic() + self.target.outage_s
        attempt = 0
        warned = False
        while True:
            attempt += 1
            out, part_versions, after = self._outgoing(part, rows, seqs)
            try:
                last_seq = await client.publish_atomic(self._nc, out)
            except PublishError as exc:
                if exc.code in client.WRONG_LAST_SEQUENCE and attempt <= 50:
                    await asyncio.sleep(random.uniform(0, 0.002 * attempt))  # no lockstep
                    await self._refresh_heads(part, rows, seqs, versions, dup)
                    part[:] = [it for it in part if not (it.kind == "event" and dup[it.index])]
                    if not part:
                        return
                    continue
                if exc.code == client.DUPLICATE_IN_BATCH:
                    await self._publish_singly(part, rows, seqs, versions, dup)
                    return
                raise
            except TRANSIENT as exc:
                if time.monotonic() > deadline:
                    raise EventLogError(
                        f"{self.where}: no JetStream leader answered for"
                        f" {self.target.outage_s:.0f} s ({type(exc).__name__});"
                        " nothing of this batch is acknowledged"
                    ) from None
                if not warned:
                    log_.warning("%s: no answer from the stream leader; retrying", self.where)
                    warned = True
                await asyncio.sleep(min(0.05 * attempt, 1.0))
                # The part may have been stored before the answer was lost: re-read heads.
                await self._refresh_heads(part, rows, seqs, versions, dup, quiet=True)
                part[:] = [it for it in part if not (it.kind == "event" and dup[it.index])]
                if not part:
                    return
                continue
            first = last_seq - len(part) + 1
            for pos, item in enumerate(part):
                if item.kind == "event":
                    seqs[item.index] = first + pos
                    versions[item.index] = part_versions[pos]
            self._advance_heads(part, rows, seqs, after)
            if warned:
                log_.warning("%s: the stream answers again", self.where)
            return

    def _advance_heads(
        self, part: list[_Item], rows: list[list[Any]], seqs: list[int], after: dict[str, int]
    ) -> None:
        last: dict[str, int] = {}  # each stream's last event in the part
        for item in part:
            if item.kind == "event":
                last[rows[item.index][STREAM]] = item.index
        for stream, index in last.items():
            self._heads[stream] = Head(seqs[index], after[stream], rows[index][KEY])

    async def _publish_singly(
        self,
        part: list[_Item],
        rows: list[list[Any]],
        seqs: list[int],
        versions: list[int],
        dup: list[bool],
    ) -> None:
        """The part one message at a time, each acknowledged (the server told us some are
        already stored: their acks say which, with the original's sequence). Events first,
        trailers (the checkpoint last) after, so a crash in between re-runs harmlessly."""
        for item in part:
            if item.kind == "event":
                row = rows[item.index]
                stream = row[STREAM]
                head = self._heads[stream]
                headers = {"Nats-Expected-Last-Subject-Sequence": str(head.seq)}
                if row[KEY] is not None:
                    headers["Nats-Msg-Id"] = row[KEY]
                seq, is_dup = await self._publish_retrying(
                    Outgoing(self.layout.event(stream), _body(row, head.version + 1), headers)
                )
                seqs[item.index] = seq
                if is_dup:
                    dup[item.index] = True
                else:
                    versions[item.index] = head.version + 1
                    self._heads[stream] = Head(seq, head.version + 1, row[KEY])
            else:
                body_ = dict(item.body or {})
                if item.kind in ("resolve", "checkpoint") and item.index >= 0:
                    body_.update({"seq": seqs[item.index]} if seqs[item.index] else {})
                headers = {"Nats-Msg-Id": item.msg_id} if item.msg_id else {}
                await self._publish_retrying(Outgoing(item.subject, orjson.dumps(body_), headers))

    async def _publish_retrying(self, out: Outgoing) -> tuple[int, bool]:
        return await self._retrying(client.publish_one, self._nc, out)

    async def _ensure_heads(self, streams: set[str]) -> None:
        missing = [s for s in streams if s not in self._heads]
        if missing:
            heads = await asyncio.gather(*(self._fetch_head(s) for s in missing))
            self._heads.update(zip(missing, heads, strict=True))

    async def _fetch_head(self, stream: str) -> Head:
        last = await self._retrying(client.direct_last, self._nc, self.target.stream,
                                    self.layout.event(stream))  # fmt: skip
        if last is None:
            return Head(0, 0, None)
        body = orjson.loads(last.data)
        return Head(last.seq, int(body[VERSION]), last.headers.get("Nats-Msg-Id"))

    async def _refresh_heads(
        self,
        part: list[_Item],
        rows: list[list[Any]],
        seqs: list[int],
        versions: list[int],
        dup: list[bool],
        quiet: bool = False,
    ) -> None:
        """Heads of the part's streams read again, and events now in the log marked done."""
        streams = {rows[it.index][STREAM] for it in part if it.kind == "event"}
        for s in streams:
            self._heads.pop(s, None)
        await self._ensure_heads(streams)
        pending = [it.index for it in part if it.kind == "event"]
        sub_rows = [rows[i] for i in pending]
        sub_seqs = [0] * len(pending)
        sub_versions = [0] * len(pending)
        sub_dup = [False] * len(pending)
        self._resume(sub_rows, sub_seqs, sub_versions, sub_dup)
        for j, i in enumerate(pending):
            if sub_dup[j]:
                dup[i], seqs[i], versions[i] = True, sub_seqs[j], sub_versions[j]
        if not quiet:
            log_.info("%s: another producer moved a stream; versions re-read", self.where)

    async def _retrying(self, fn: Any, *args: Any) -> Any:
        """`fn(*args)` again while no server answers, for up to the URL's `outage`."""
        deadline = time.monotonic() + self.target.outage_s
        while True:
            try:
                return await fn(*args)
            except TRANSIENT:
                if time.monotonic() > deadline:
                    raise EventLogError(f"{self.where}: no JetStream server answered") from None
                await asyncio.sleep(0.1)

    # -- reading ---------------------------------------------------------------------------------

    def _row(self, seq: int, subject: str, committed_ns: int, data: bytes) -> tuple[Any, ...]:
        b = orjson.loads(data)
        # body: stream, version, type, schema_version, key, payload, metadata, source_time, read
        # [, written]
        written = b[BODY_WIDTH] if len(b) > BODY_WIDTH else None
        return (seq, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], committed_ns, written)

    async def read_rows(self, after: int = 0, limit: int = 1000) -> list[tuple[Any, ...]]:
        """Events with seq > `after`, in order, at most `limit` (direct gets of ≤ 1,000)."""
        out: list[tuple[Any, ...]] = []
        start = after + 1
        while len(out) < limit:
            want = min(MAX_BATCH, limit - len(out))
            got: list[Stored] = await self._retrying(
                client.direct_batch, self._nc, self.target.stream, self.layout.events, start, want
            )
            out += [self._row(m.seq, m.subject, m.time_ns, m.data) for m in got]
            if len(got) < want:
                break
            start = got[-1].seq + 1
        return out

    async def follow_rows(
        self, after: int = 0, *, batch_limit: int = 1000
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """New events forever from `after` on, pushed by a consumer that eventlog/jetstream/
        feed.py reads and re-creates after a gap, a failover or silence."""
        feed = Feed(self.target, self._nc, self.layout.events, after, self._row)
        async with contextlib.aclosing(feed.batches(batch_limit)) as batches:
            async for rows in batches:
                yield rows

    async def log_id(self) -> str | None:
        """The stream's name and the time it was made: a stream deleted and made again under
        the same name is another log."""
        info = await client.stream_info(self._nc, self.target.stream)
        return f"nats:{self.target.stream}:{info.get('created', '')}"

    async def head(self) -> int:
        """The last event's sequence (0 for an empty log)."""
        last = await self._retrying(
            client.direct_last, self._nc, self.target.stream, self.layout.events
        )
        return 0 if last is None else last.seq

    # -- checkpoints -----------------------------------------------------------------------------

    async def source_checkpoint(self, source: str) -> Any | None:
        last = await self._retrying(
            client.direct_last, self._nc, self.target.stream, self.layout.checkpoint(source)
        )
        if last is None:
            return None
        return orjson.loads(last.data).get("position")

    async def source_checkpoints(self) -> list[dict[str, Any]]:
        info = await client.stream_info(self._nc, self.target.stream, self.layout.checkpoints)
        out = []
        for subject in sorted(info["state"]["subjects"]):
            last = await client.direct_last(self._nc, self.target.stream, subject)
            if last is None:
                continue
            body = orjson.loads(last.data)
            if body.get("position") is None:
                continue  # forgotten
            out.append(
                {
                    "source": body["source"],
                    "position": body["position"],
                    "last_seq": _pointed(last.seq, body),
                    "updated_ns": last.time_ns,
                }
            )
        return sorted(out, key=lambda c: c["source"])

    async def forget_source(self, source: str) -> bool:
        """A tombstone checkpoint: the source's next ingest reads it from the start."""
        had = await self.source_checkpoint(source) is not None
        if had:
            body = orjson.dumps({"source": source, "position": None})
            await self._publish_retrying(Outgoing(self.layout.checkpoint(source), body, {}))
        return had

    async def known_sources(self) -> set[str]:
        out = {c["source"] for c in await self.source_checkpoints()}
        out |= {d["source"] for d in await self.dead_letters(limit=None, resolved=None)}
        return out

    # -- dead letters ----------------------------------------------------------------------------

    async def _scan(self, subject: str) -> list[Stored]:
        out: list[Stored] = []
        start = 1
        while True:
            got = await client.direct_batch(self._nc, self.target.stream, subject, start, MAX_BATCH)
            out += got
            if len(got) < MAX_BATCH:
                return out
            start = got[-1].seq + 1

    async def _all_dead_letters(self) -> list[dict[str, Any]]:
        resolved: dict[int, int | None] = {}
        for m in await self._scan(self.layout.resolutions):
            body = orjson.loads(m.data)
            resolved[int(body["id"])] = _pointed(m.seq, body)
        out = []
        for m in await self._scan(self.layout.dead_letters):
            out.append(_dead_letter(m, resolved))
        return out

    async def dead_letters(
        self,
        *,
        source: str | None = None,
        limit: int | None = 100,
        resolved: bool | None = False,
        raw_bytes: bool = False,
        after: int | None = None,
    ) -> list[dict[str, Any]]:
        rows = await self._all_dead_letters()
        if source is not None:
            rows = [d for d in rows if d["source"] == source]
        if resolved is not None:
            rows = [d for d in rows if (d["resolved_seq"] is not None) == resolved]
        if after is not None:
            rows = [d for d in rows if d["id"] > after][:limit]
        elif limit is not None:
            rows = rows[-limit:] if limit else []
        for d in rows:
            raw = d["raw"]
            if raw_bytes and isinstance(raw, str):
                d["raw"] = raw.encode()
            elif not raw_bytes and isinstance(raw, bytes):
                d["raw"] = raw.decode("utf-8", "replace")
        return rows

    async def dead_letter(self, id_: int) -> dict[str, Any] | None:
        m = await client.direct_seq(self._nc, self.target.stream, id_)
        if m is None or not m.subject.startswith(self.layout.dead_letters[:-1]):
            return None
        for d in await self._all_dead_letters():
            if d["id"] == id_:
                raw = d["raw"]
                d["raw"] = raw.encode() if isinstance(raw, str) else raw
                return d
        return None

    async def dead_letter_count(self, *, open_only: bool = False) -> int:
        return len(await self.dead_letters(limit=None, resolved=False if open_only else None))

    async def purge_dead_letters(
        self,
        *,
        source: str | None = None,
        older_than_ns: int | None = None,
        resolved_only: bool = False,
    ) -> int:
        """Delete matching dead letters (each message by its sequence)."""
        doomed = [
            d
            for d in await self.dead_letters(source=source, limit=None, resolved=None)
            if (older_than_ns is None or d["created_ns"] < older_than_ns)
            and (not resolved_only or d["resolved_seq"] is not None)
        ]
        for d in doomed:
            reply = await client.api(
                self._nc,
                f"$JS.API.STREAM.MSG.DELETE.{self.target.stream}",
                {"seq": d["id"], "no_erase": True},
            )
            if "error" in reply:
                raise EventLogError(f"{self.where}: {reply['error'].get('description')}")
        return len(doomed)

    async def stats(self) -> LogStats:
        info = await client.stream_info(self._nc, self.target.stream, self.layout.events)
        subjects = info["state"]["subjects"]
        return LogStats(
            path=self.where,
            head_seq=await self.head(),
            events=sum(subjects.values()),
            streams=len(subjects),
            dead_letters=await self.dead_letter_count(open_only=True),
            sources=len(await self.source_checkpoints()),
            db_bytes=int(info["state"].get("bytes", 0)),
            wal_bytes=0,
        )


def _pointed(seq: int, body: dict[str, Any]) -> int | None:
    """The event sequence a trailer message names (see JetStreamLog._ref)."""
    if "back" in body:
        return seq - int(body["back"])
    return body.get("seq")


def _dead_letter(m: Stored, resolved: dict[int, int | None]) -> dict[str, Any]:
    body = orjson.loads(m.data)
    raw = body.get("raw")
    encoding = body.get("raw_encoding")
    if raw is not None and encoding == "base64":
        raw = base64.b64decode(raw)
    elif raw is not None and encoding == "utf-8":
        raw = raw.encode()
    return {
        "id": m.seq,
        "source": body["source"],
        "position": body["position"],
        "error": body["error"],
        "raw": raw,
        "created_ns": body.get("created_ns", m.time_ns),
        "key": body.get("key"),
        "resolved_seq": resolved.get(m.seq),
    }
