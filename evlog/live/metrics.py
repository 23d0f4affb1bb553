"""Live metrics of a follower as Prometheus/OpenMetrics text over HTTP on loopback: per-stage
latency histograms (buckets, not summaries, from 50 µs to 60 s), events appended and projected,
projector lag in events and seconds, dead letters.

Stages, per event, as docs/latency.md defines them (the same as `evlog latency` and the latency
table): read_to_commit, commit_to_visible, read_to_visible, and for events whose source said
when they were written (`evlog watch`) written_to_read and written_to_visible; live batches
only. The DuckDB
transaction that makes a batch visible is timed per batch as evlog_apply_seconds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from evlog.projector import EventBatch, Projector
from evlog.projector.batch import COMMITTED, READ, WRITTEN

from .histogram import Histogram
from .looplag import LoopLag

STAGES = ("read_to_commit", "commit_to_visible", "read_to_visible")
WRITTEN_STAGES = ("written_to_read", "written_to_visible")  # events with a written stamp
# `le` bounds in seconds: fine enough for µs-ms latencies, wide enough for a stalled minute.
BOUNDS_S = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class LiveMetrics:
    """Fed every batch the follower makes visible; read by the HTTP handler (same loop).
    Events read before `since_ns` are not recorded (a load test's warm-up)."""

    def __init__(self, since_ns: int = 0) -> None:
        self.histograms = {stage: Histogram() for stage in (*STAGES, *WRITTEN_STAGES)}
        self.apply = Histogram()  # per batch: the DuckDB transaction that made it visible
        # How late the event loop ran a heartbeat timer (looplag.py): 10 ms beats while batches
        # flow (within the last second), 1 s beats when idle.
        self.loop = LoopLag(busy=lambda: time.monotonic() - self.last_batch_mono < 1.0)
        self.last_batch_mono = 0.0
        self.events = 0
        self.batches = 0
        self.since_ns = since_ns

    def observe(self, batch: EventBatch) -> None:
        # The batch's visible stamp is the one the latency table keeps (docs/latency.md).
        visible, since = batch.projected_ns, self.since_ns
        r2c, c2v, r2v, w2r, w2v = (self.histograms[s].record for s in (*STAGES, *WRITTEN_STAGES))
        self.apply.record(max(0, batch.visible_ns - batch.projected_ns))
        for row in batch.rows:
            read, committed, written = row[READ], row[COMMITTED], row[WRITTEN]
            if read < since:
                continue
            r2c(committed - read)
            c2v(visible - committed)
            r2v(visible - read)
            if written is not None:
                w2r(read - written)
                w2v(visible - written)
        self.events += len(batch)
        self.batches += 1
        self.last_batch_mono = time.monotonic()


def _histogram_lines(name: str, stage: str | None, h: Histogram) -> list[str]:
    label = f'stage="{stage}",' if stage else ""
    plain = f'{{stage="{stage}"}}' if stage else ""
    counts = h.cumulative(int(b * 1e9) for b in BOUNDS_S)
    lines = [
        f'{name}_bucket{{{label}le="{b:g}"}} {c}' for b, c in zip(BOUNDS_S, counts, strict=True)
    ]
    lines.append(f'{name}_bucket{{{label}le="+Inf"}} {h.total}')
    lines.append(f"{name}_sum{plain} {h.sum_ns / 1e9:.9f}")
    lines.append(f"{name}_count{plain} {h.total}")
    return lines


async def render(
    projector: Projector, m: LiveMetrics, more: Callable[[], list[str]] | None = None
) -> str:
    """The exposition text, with log-side figures read at scrape time (and `more`'s lines)."""
    position = projector.position
    head, lag_events, lag_s = await projector.lag()
    dead = await projector.log.dead_letter_count()
    out = [
        "# HELP evlog_latency_seconds Per-event latency by stage, from the adapter's read stamp"
        " (written_to_*: from the source's written stamp, where it has one).",
        "# TYPE evlog_latency_seconds histogram",
    ]
    for stage in (*STAGES, *WRITTEN_STAGES):
        out += _histogram_lines("evlog_latency_seconds", stage, m.histograms[stage])
    out += [
        "# HELP evlog_apply_seconds Per live batch: the DuckDB transaction making it visible.",
        "# TYPE evlog_apply_seconds histogram",
        *_histogram_lines("evlog_apply_seconds", None, m.apply),
        "# HELP evlog_loop_lag_seconds How late the event loop ran a heartbeat timer (10 ms"
        " beats while batches flow, 1 s when idle).",
        "# TYPE evlog_loop_lag_seconds histogram",
        *_histogram_lines("evlog_loop_lag_seconds", None, m.loop.histogram),
    ]
    gauges = (
        ("evlog_events_appended_total", "counter", "Events in the log (its head sequence).", head),
        ("evlog_events_projected_total", "counter", "Events this follower applied (catch-up"
         " included; the histograms cover live batches only).", projector.applied_events),
        ("evlog_batches_projected_total", "counter", "Live batches this follower applied.",
         m.batches),
        ("evlog_projector_position", "gauge", "Last sequence visible in DuckDB.", position),
        ("evlog_projector_lag_events", "gauge", "Committed, not yet visible.", lag_events),
        ("evlog_projector_lag_seconds", "gauge", "Age of the oldest such event.", round(lag_s, 6)),
        ("evlog_dead_letters_total", "counter", "Records that could not be read.", dead),
    )  # fmt: skip
    for name, kind, help_, value in gauges:
        out += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name} {value}"]
    if more is not None:
        out += more()
    return "\n".join(out) + "\n"


@contextlib.asynccontextmanager
async def serve_metrics(
    projector: Projector,
    port: int,
    host: str = "127.0.0.1",
    more: Callable[[], list[str]] | None = None,
) -> AsyncIterator[tuple[str, int]]:
    """GET /metrics on host:port while the context is open, from a LiveMetrics subscribed to
    the projector's live batches for as long; yields the bound address (port 0: any free one)."""
    metrics = LiveMetrics()
    projector.subscribe(metrics.observe)
    heartbeat = asyncio.create_task(metrics.loop.beat())

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if method == "GET" and path.split("?")[0] in ("/metrics", "/"):
                body, status = (await render(projector, metrics, more)).encode(), "200 OK"
            else:
                body, status = b"not found: try /metrics\n", "404 Not Found"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass  # a client that hung up or spoke something else: nothing to answer
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    sock = server.sockets[0].getsockname()
    try:
        yield str(sock[0]), int(sock[1])
    finally:
        heartbeat.cancel()
        projector.unsubscribe(metrics.observe)
        server.close()
        await server.wait_closed()
