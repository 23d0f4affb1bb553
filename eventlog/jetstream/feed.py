"""The follower's feed: a push consumer read over a connection of its own that speaks the NATS
protocol directly, so an event costs a slice of bytes rather than a parsed message object
(nats-py parses every header of every message, the follower's largest cost:
docs/scale-out.md).

The consumer is ordered by hand: ephemeral, no acks, flow control and idle heartbeats on. A gap
in its delivery sequence, heartbeats that stop, or a lost connection re-create it from the
sequence after the last event handed out, on whichever server answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson

from .client import Target, api

try:
    from nats.aio.client import __version__ as NATS_PY_VERSION
except ImportError:  # pragma: no cover
    NATS_PY_VERSION = "2.0.0"

log_ = logging.getLogger("evlog.jetstream")

HEARTBEAT_S = 2.0
MISSED_HEARTBEATS = 3  # silence this many heartbeats long: re-create the consumer
Row = tuple[Any, ...]


class ConsumerLost(Exception):
    """The consumer must be re-created (a gap, silence, or the connection went)."""


class Feed:
    """Rows of events after `after` on `subject`, pushed by JetStream, in order, each once."""

    def __init__(
        self,
        target: Target,
        nc: Any,
        subject: str,
        after: int,
        row: Callable[[int, str, int, bytes], Row],
    ) -> None:
        self.target = target
        self._nc = nc  # the log's nats-py connection: consumer create/delete requests
        self.subject = subject
        self.last_seq = after
        self._row = row
        self._rows: list[Row] = []
        self._arrived = asyncio.Event()
        self._heard = 0.0  # loop time the server was last heard from

    async def batches(self, limit: int) -> AsyncGenerator[list[Row], None]:
        """Rows as they arrive, at most `limit` at a time; forever, across failovers."""
        reader = asyncio.create_task(self._run())
        try:
            while True:
                await self._arrived.wait()
                if reader.done():
                    reader.result()  # a failure that cannot be retried: raise it here
                take, self._rows[:] = self._rows[:limit], self._rows[limit:]
                if not self._rows:
                    self._arrived.clear()
                if take:
                    yield take
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader

    async def _run(self) -> None:
        try:
            attempt = 0
            while True:
                try:
                    await self._consume()
                except (
                    ConsumerLost,
                    OSError,
                    TimeoutError,
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                ) as exc:
                    attempt += 1
                    log_.info("follower: %s; re-creating the consumer", exc or type(exc).__name__)
                    await asyncio.sleep(min(0.1 * attempt, 1.0))
                else:
                    attempt = 0
        finally:
            self._arrived.set()  # wake `batches`, which re-raises a failure

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        errors = []
        for server in self.target.servers:
            host, _, port = server.split("://", 1)[1].rpartition(":")
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host.strip("[]"), int(port)), 2
                )
            except (OSError, TimeoutError) as exc:
                errors.append(f"{server}: {exc}")
                continue
            await asyncio.wait_for(reader.readline(), 2)  # INFO {...}
            # As nats-py introduces itself: with a shorter CONNECT (no lang/version/echo) the
            # server delays each message (docs/scale-out.md).
            connect = {
                "verbose": False,
                "pedantic": False,
                "headers": True,
                "no_responders": True,
                "protocol": 1,
                "echo": True,
                "lang": "python3",
                "version": NATS_PY_VERSION,
            }
            writer.write(b"CONNECT " + orjson.dumps(connect) + b"\r\nPING\r\n")
            await writer.drain()
            return reader, writer
        raise OSError("; ".join(errors) or "no server")

    async def _consume(self) -> None:
        reader, writer = await self._connect()
        inbox = f"_INBOX.evlog.{uuid.uuid4().hex}"
        writer.write(f"SUB {inbox} 1\r\n".encode())
        await writer.drain()
        name = await self._create_consumer(inbox)
        self._heard = asyncio.get_running_loop().time()
        watchdog = asyncio.create_task(self._watch(writer))
        try:
            await self._read(reader, writer)
        finally:
            watchdog.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await api(self._nc, f"$JS.API.CONSUMER.DELETE.{self.target.stream}.{name}")

    async def _create_consumer(self, inbox: str) -> str:
        config: dict[str, Any] = {
            "deliver_subject": inbox,
            "filter_subject": self.subject,
            "ack_policy": "none",
            "flow_control": True,
            "idle_heartbeat": int(HEARTBEAT_S * 1e9),
            "mem_storage": True,
            "num_replicas": 1,
            "inactive_threshold": int(30e9),
        }
        if self.last_seq > 0:
            config.update(deliver_policy="by_start_sequence", opt_start_seq=self.last_seq + 1)
        else:
            config["deliver_policy"] = "all"
        body = {"stream_name": self.target.stream, "config": config}
        reply = await api(self._nc, f"$JS.API.CONSUMER.CREATE.{self.target.stream}", body)
        if "error" in reply:
            raise ConsumerLost(f"consumer not created: {reply['error'].get('description')}")
        return str(reply["name"])

    async def _watch(self, writer: asyncio.StreamWriter) -> None:
        """Close the connection when the server has been silent for several heartbeats (the
        read then ends and the consumer is re-created). A timer here rather than a timeout
        on each read: a read of data already buffered must not have to yield to the loop."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            if loop.time() - self._heard > HEARTBEAT_S * MISSED_HEARTBEATS:
                log_.info("follower: no word from the server in %.0f s", loop.time() - self._heard)
                writer.close()
                return

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Parse MSG/HMSG/PING frames until the consumer must be re-created."""
        delivered = 0  # the consumer's own sequence of the last event it sent
        rows = self._rows
        row = self._row
        loop = asyncio.get_running_loop()
        while True:
            line = await reader.readuntil(b"\r\n")
            self._heard = loop.time()
            if line.startswith(b"HMSG"):
                parts = line.split()
                # HMSG <subject> <sid> [reply] <header bytes> <total bytes>
                hlen, total = int(parts[-2]), int(parts[-1])
                reply = parts[3] if len(parts) == 6 else b""
                frame = await reader.readexactly(total + 2)
                if reply.startswith(b"$JS.ACK."):
                    t = reply.split(b".")
                    if len(t) == 9:
                        cseq, seq, ts = int(t[6]), int(t[5]), int(t[7])
                    else:
                        cseq, seq, ts = int(t[8]), int(t[7]), int(t[9])
                    if cseq != delivered + 1:
                        raise ConsumerLost(f"delivery gap after {delivered}")
                    delivered = cseq
                    if seq > self.last_seq:
                        self.last_seq = seq
                        rows.append(row(seq, "", ts, frame[hlen:total]))
                        self._arrived.set()
                    continue
                status = frame[:hlen]
                if b" 100 " in status.split(b"\r\n", 1)[0]:  # flow control or heartbeat
                    answer = reply or _header(status, b"Nats-Consumer-Stalled")
                    if answer:
                        writer.write(b"PUB " + answer + b" 0\r\n\r\n")
                    last = _header(status, b"Nats-Last-Consumer")
                    if last and int(last) != delivered:
                        raise ConsumerLost(f"heartbeat says {int(last)} sent, {delivered} seen")
                    continue
                raise ConsumerLost(status.split(b"\r\n", 1)[0].decode(errors="replace"))
            if line.startswith(b"MSG"):
                parts = line.split()
                await reader.readexactly(int(parts[-1]) + 2)
            elif line.startswith(b"PING"):
                writer.write(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise ConsumerLost(line.decode(errors="replace").strip())
            # +OK, PONG, INFO: nothing to do


def _header(block: bytes, name: bytes) -> bytes:
    for line in block.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip() == name:
            return value.strip()
    return b""
