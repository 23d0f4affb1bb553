"""`evlog serve`'s syslog listeners: UDP (a datagram a message) and TCP (RFC 6587: octet
counting, `LEN SP MSG`, or a message a line), RFC 5424 and RFC 3164 messages parsed by
adapters/logformats.py into `log` events (facility, severity, host, app, procid, msgid,
structured data). A message that is neither is a dead letter with its reason; the rest flows.

Messages are appended in groups: whatever arrived while the previous append was committing
goes in the next one. TCP reads no further while the intake is full (the sender's socket
fills, as TCP pushes back); a datagram that finds the intake full is dropped and counted, and
the kernel's own count of datagrams it dropped is read from /proc/net/udp."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

from evlog.adapters.logformats import Context, NotATime, parse_rfc3164, parse_rfc5424
from evlog.eventlog import DeadLetter, NewEvent

from .counters import ServeCounters
from .intake import Busy, Intake

MAX_MESSAGE_BYTES = 64 * 1024  # a TCP frame longer than this ends the connection
GROUP_MAX = 5_000  # messages in one append at most
SOURCE = "syslog"
_CONTEXT = Context()  # a message's time is read as it says (RFC 3164's: UTC, this year)


def message_event(
    data: bytes, peer: str, read_ns: int, where: str
) -> tuple[NewEvent | None, DeadLetter | None]:
    """The event one syslog message is, or the dead letter it is (with why)."""
    try:
        text = data.decode("utf-8").rstrip("\r\n\x00")
    except UnicodeDecodeError as exc:
        return None, DeadLetter(SOURCE, where, f"not UTF-8: {exc.reason}", data)
    try:
        parsed = parse_rfc5424(text, _CONTEXT) or parse_rfc3164(text, _CONTEXT)
    except NotATime as exc:
        return None, DeadLetter(SOURCE, where, str(exc), data)
    if parsed is None:
        return None, DeadLetter(SOURCE, where, "not an RFC 5424 or RFC 3164 message", data)
    host = parsed.fields.get("host") or peer
    payload = {"line": text, **parsed.fields}
    meta = {"via": "syslog", "peer": peer}
    return NewEvent(
        f"syslog/{host}", "log", payload, source_time_ns=parsed.time_ns, metadata=meta,
        read_ns=read_ns,
    ), None  # fmt: skip


class Batcher:
    """Messages in, appends out: one append in flight at a time, the next one taking all that
    arrived meanwhile."""

    def __init__(self, intake: Intake, counters: ServeCounters, transport: str) -> None:
        self.intake = intake
        self.counters = counters
        self.transport = transport
        self.events: list[NewEvent] = []
        self.letters: list[DeadLetter] = []
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.dropped = 0  # UDP: refused for want of room in the intake

    def add(self, data: bytes, peer: str, read_ns: int, where: str) -> None:
        event, letter = message_event(data, peer, read_ns, where)
        self.counters.syslog[self.transport] += 1
        if event is not None:
            self.events.append(event)
        if letter is not None:
            self.letters.append(letter)
        if len(self.events) + len(self.letters) >= GROUP_MAX:
            self._room.clear()
        self._wake.set()

    async def room(self) -> None:
        """Wait until the batcher takes more (TCP reads no further meanwhile)."""
        await self._room.wait()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._append_pending()

    async def flush(self) -> None:
        """Append what arrived and is not appended yet (at stop, the listeners closed)."""
        if self.transport == "tcp" and self.intake.pending:
            await asyncio.sleep(0)  # let an append under way finish its commit first
        await self._append_pending()

    async def _append_pending(self) -> None:
        events, letters = self.events, self.letters
        self.events, self.letters = [], []
        self._room.set()
        if not events and not letters:
            return
        while True:
            try:
                done = await self.intake.append(events, letters)
                break
            except Busy:
                if self.transport == "udp":
                    self.dropped += len(events) + len(letters)
                    return
                await asyncio.sleep(0.05)  # TCP: the senders wait, in their buffers
        if done.invalid:  # a message the log cannot store: a dead letter, as a bad one is
            bad = [
                DeadLetter(SOURCE, f"{self.transport}", why, str(events[i].payload["line"]))
                for i, why in done.invalid
            ]
            with contextlib.suppress(Busy):
                await self.intake.append([], bad)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, batcher: Batcher) -> None:
        self.batcher = batcher
        self.count = 0

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.count += 1
        peer = str(addr[0])
        self.batcher.add(data, peer, time.time_ns(), f"udp:{peer}:{self.count}")


async def _tcp_frames(reader: asyncio.StreamReader, batcher: Batcher, peer: str) -> None:
    """RFC 6587 on one connection: octet counting when a frame starts with a digit, else a
    message a line (non-transparent framing)."""
    n = 0
    while True:
        await batcher.room()
        first = await reader.read(1)
        if not first:
            return
        if first.isdigit():
            digits = first + await reader.readuntil(b" ")
            length = int(digits[:-1])
            if length > MAX_MESSAGE_BYTES:
                raise ValueError(f"a frame of {length} bytes")
            data = await reader.readexactly(length)
        else:
            data = first + await reader.readuntil(b"\n")
        n += 1
        batcher.add(data, peer, time.time_ns(), f"tcp:{peer}:{n}")


def udp_drops(sock: socket.socket) -> int:
    """The kernel's count of datagrams dropped on `sock` (/proc/net/udp's `drops`), 0 where it
    cannot be read."""
    try:
        inode = os.fstat(sock.fileno()).st_ino
    except OSError:
        return 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) >= 13 and cols[9] == str(inode):
                return int(cols[12])
    return 0


@contextlib.asynccontextmanager
async def serve_syslog(
    intake: Intake,
    counters: ServeCounters,
    host: str,
    udp_port: int | None,
    tcp_port: int | None,
) -> AsyncIterator[dict[str, tuple[str, int]]]:
    """The listeners asked for (None: not served; 0: any free port); yields their addresses by
    transport."""
    loop = asyncio.get_running_loop()
    bound: dict[str, tuple[str, int]] = {}
    tasks: list[asyncio.Task[None]] = []
    udp_transport = None
    server = None
    batchers: list[Batcher] = []
    raw: socket.socket | None = None
    try:
        if udp_port is not None:
            batcher = Batcher(intake, counters, "udp")
            batchers.append(batcher)
            tasks.append(asyncio.create_task(batcher.run()))
            udp_transport, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(batcher), local_addr=(host, udp_port)
            )
            sock = udp_transport.get_extra_info("socket")
            bound["udp"] = sock.getsockname()[:2]
            raw = socket.socket(fileno=os.dup(sock.fileno()))
            counters.udp_drops = lambda: udp_drops(raw) if raw is not None else 0
        if tcp_port is not None:
            tcp_batcher = Batcher(intake, counters, "tcp")
            batchers.append(tcp_batcher)
            tasks.append(asyncio.create_task(tcp_batcher.run()))

            async def connection(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter
            ) -> None:
                peer = str((writer.get_extra_info("peername") or ("?",))[0])
                try:
                    await _tcp_frames(reader, tcp_batcher, peer)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                    pass  # a cut or oversized frame ends the connection; what came before stays
                finally:
                    writer.close()

            server = await asyncio.start_server(connection, host, tcp_port, limit=MAX_MESSAGE_BYTES)
            bound["tcp"] = server.sockets[0].getsockname()[:2]
        yield bound
    finally:
        if server is not None:
            server.close()
        if udp_transport is not None:
            udp_transport.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for b in batchers:  # what arrived before the listeners closed goes in
            await b.flush()
        if raw is not None:
            raw.close()
