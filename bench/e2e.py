"""bench/e2e: append -> visible in DuckDB, end to end, at fixed offered rates (open loop).

A producer process appends at a fixed rate, each event stamped with its intended send time; this
process follows the log into a FILE-backed DuckDB and records, per event, when the DuckDB commit
that made it visible returned. The same run against an in-memory DuckDB is the baseline, and the
same run with two user SQL projections added (a latest-per-key one and a per-minute one) shows
what users' projections cost the live path, and the same run with the live page open (served by
the follower, read by bench/page_client.py in its own process: the pipeline's events each
second, every panel every --page-every seconds) what an open page costs it. Then a rebuild of N
events, beside a plain sqlite3 scan of the same rows.

    python -m bench.e2e                 # 1k and 10k events/s, 60 s each; rebuild of 1M events
    python -m bench.e2e --quick         # CI: seconds
    python -m bench.e2e --log nats://127.0.0.1:4222   # that log beside the SQLite log instead
                                        # (1k and 5k events/s, 20 s; `evlog nats up` first)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from evlog.eventlog import EventLog, NewEvent
from evlog.loadtest.producer import TEXT, run_producer
from evlog.projector import EventBatch, Projection, Projector, Table, all_projections
from evlog.projector.batch import COMMITTED, PAYLOAD, SEQ, SOURCE_TIME, STREAM, VERSION
from evlog.projector.projection import LiveColumns
from evlog.projector.sqlfile import parse
from evlog.ui.app import serve_ui
from evlog.ui.sources import FollowerSource

from .stats import cpu_steal_ms, install_uvloop, percentile

# Two user projections as users write them (docs/projections.md): state per key as append-only
# rows with a latest-per-key view, and a per-minute rollup's rows.
USER_SQL = {
    "bench_latest": """
        CREATE TABLE bench_latest_rows (seq BIGINT, stream VARCHAR, version BIGINT, chars BIGINT);
        INSERT INTO bench_latest_rows
            SELECT seq, stream, version, length(payload->>'text') FROM batch;
        CREATE VIEW bench_latest AS SELECT stream, arg_max(version, seq) AS version,
            arg_max(chars, seq) AS chars FROM bench_latest_rows GROUP BY stream""",
    "bench_minutes": """
        CREATE TABLE bench_minute_rows (seq BIGINT, stream VARCHAR, minute TIMESTAMP);
        INSERT INTO bench_minute_rows
            SELECT seq, stream, date_trunc('minute', to_timestamp(committed_ns / 1e9)) FROM batch;
        CREATE VIEW bench_per_minute AS SELECT stream, minute, count(*) AS events
            FROM bench_minute_rows GROUP BY ALL""",
}


VARIANTS = [
    "file-hot", "file-user", "file-pyrows", "file-pyarrow", "file-page", "file-direct", "memory"
]  # fmt: skip
PAYLOAD_SIZES = pa.schema(
    [("seq", pa.int64()), ("stream", pa.string()), ("version", pa.int64()), ("chars", pa.int64())]
)
PAYLOAD_SIZES_TABLE = Table(
    "payload_sizes", "seq BIGINT, stream VARCHAR, version BIGINT, chars BIGINT"
)


class PayloadSizesRows(Projection):
    """A Python projection in row form: Python values per event (a column list per column,
    handed to the live tier as they are, made Arrow there once for many batches; the default
    `rows` makes them Arrow for catch-up and rebuild)."""

    name = "bench_py_rows"
    version = 1
    tables = (PAYLOAD_SIZES_TABLE,)

    def live_columns(self, batch: EventBatch) -> dict[str, LiveColumns]:
        c = batch.columns
        chars = [len(p) if p is not None else None for p in c[PAYLOAD]]
        return {"payload_sizes": (PAYLOAD_SIZES, [c[SEQ], c[STREAM], c[VERSION], chars])}


class PayloadSizesArrow(Projection):
    """The same rows in Arrow form: the batch as an Arrow table in, Arrow compute out."""

    name = "bench_py_arrow"
    version = 1
    tables = (PAYLOAD_SIZES_TABLE,)

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        a = batch.arrow
        chars = pc.utf8_length(a["payload"]).cast(pa.int64())
        columns = [a["seq"], a["stream"], a["version"], chars]
        return {"payload_sizes": pa.Table.from_arrays(columns, schema=PAYLOAD_SIZES)}


def with_user_projections() -> list[Projection]:
    """The built-ins and the two user SQL projections."""
    builtins = all_projections()
    return [*builtins, *(parse(name, sql, None, builtins) for name, sql in USER_SQL.items())]


def with_python_projection(cls: type[Projection]) -> list[Projection]:
    """The built-ins and one Python projection."""
    return [*all_projections(), cls()]


async def follow_run(
    db: Path,
    duck: Path | str,
    rate: int,
    seconds: float,
    warmup: float,
    flush_every: float,
    projections: list[Projection] | None = None,
    page_every: float | None = None,
) -> dict[str, Any]:
    """With `page_every`, the live page is served and read by a client process meanwhile."""
    latencies: list[int] = []
    to_commit: list[int] = []  # intended send -> committed in the log (producer side)
    skip_before = time.time_ns() + int(warmup * 1e9)

    def record(batch: EventBatch) -> None:
        vis = batch.visible_ns
        for r in batch.rows:
            t = r[SOURCE_TIME]
            if t is not None and t >= skip_before:
                latencies.append(vis - t)
                to_commit.append(r[COMMITTED] - t)

    async with await EventLog.open(db):
        pass  # create the file; the producer process appends, we only read
    page: dict[str, Any] = {}
    async with (
        await EventLog.open(db, writable=False) as log,
        await Projector.open(log, duck, projections, flush_every=flush_every) as pj,
        contextlib.AsyncExitStack() as stack,
    ):
        await pj.catch_up()
        client = None
        if page_every is not None:
            ui = await stack.enter_async_context(serve_ui(FollowerSource(pj), 0))
            client = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.page_client", ui.url, "--seconds",
                str(seconds + warmup), "--every", str(page_every),
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
        follower = asyncio.create_task(pj.follow(record))
        steal0, cpu0 = cpu_steal_ms(), time.process_time()
        achieved = await run_producer(db, rate, seconds + warmup, tag=f"{rate}-{time.time_ns()}")
        head = await log.head()
        await asyncio.wait_for(pj.wait_for(head), 120)
        steal1, cpu1 = cpu_steal_ms(), time.process_time()
        if client is not None:
            out, _ = await asyncio.wait_for(client.communicate(), 120)
            page = json.loads(out.decode().strip().splitlines()[-1])
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        flushes = list(pj.flushes)
    latencies.sort()
    to_commit.sort()
    return {
        "n": len(latencies),
        "p50": percentile(latencies, 50) / 1e6,
        "p99": percentile(latencies, 99) / 1e6,
        "p999": percentile(latencies, 99.9) / 1e6,
        "max": (latencies[-1] / 1e6) if latencies else float("nan"),
        "achieved": achieved,
        "flushes": flushes,
        "commit_p99": percentile(to_commit, 99) / 1e6,
        "commit_max": (to_commit[-1] / 1e6) if to_commit else float("nan"),
        "page": page,
        # CPU time the hypervisor gave to others while the producer ran (both cores): when
        # it is large, the run measured the host, not evlog.
        "steal_ms": None if steal0 is None or steal1 is None else steal1 - steal0,
        # CPU of this process (the follower, all its threads, the page's server when open) per
        # event, from the producer's start until caught up: less moved by a noisy host than
        # latency is. The log is fresh per run, so its head is this run's events.
        "cpu_us_per_event": (cpu1 - cpu0) * 1e6 / max(1, head),
    }


def fmt(r: dict[str, Any]) -> str:
    return (
        f"achieved {r['achieved']:8.0f}/s  p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms"
        f"  p999 {r['p999']:7.2f} ms  max {r['max']:8.2f} ms  (n={r['n']})"
        f"  [of which send->log commit: p99 {r['commit_p99']:.2f} ms, max {r['commit_max']:.2f}]"
        + (f"  [VM steal {r['steal_ms']:.0f} ms]" if r["steal_ms"] is not None else "")
        + f"  [follower CPU {r['cpu_us_per_event']:.0f} µs/event]"
    )


async def rebuild_run(workdir: Path, n: int) -> tuple[float, float]:
    """Rebuild time of n events into all projections vs. a raw sqlite3 scan of the same rows."""
    db = workdir / "rebuild.db"
    async with await EventLog.open(db) as log:
        batch = 20_000
        for b in range(0, n, batch):
            await log.append_many(
                [
                    NewEvent(
                        f"chat-{i % 16}",
                        "message",
                        {"author": f"user{i % 50}", "text": TEXT, "n": i},
                        key=f"r{i:09d}",
                        source_time_ns=1_700_000_000_000_000_000 + i * 1_000_000,
                    )
                    for i in range(b, min(n, b + batch))
                ]
            )
    t0 = time.perf_counter()
    conn = sqlite3.connect(db)
    scanned = sum(1 for _ in conn.execute("SELECT * FROM events"))
    conn.close()
    scan_s = time.perf_counter() - t0
    assert scanned == n
    async with (
        await EventLog.open(db, writable=False) as log,
        await Projector.open(log, workdir / "rebuild.duckdb") as pj,
    ):
        t0 = time.perf_counter()
        replayed = await pj.rebuild()
        rebuild_s = time.perf_counter() - t0
    assert all(v == n for v in replayed.values()), replayed
    return rebuild_s, scan_s


async def main_async(args: argparse.Namespace, workdir: Path) -> None:
    print(
        f"bench/e2e  loop={args.loop_name}  cpus={os.cpu_count()}  quick={args.quick}"
        f"  {args.seconds:g} s per rate after {args.warmup:g} s warm-up;"
        " producer in its own process"
    )
    print("append -> visible in DuckDB, from each event's intended send time:")
    every = args.page_every
    for rate in args.rates:
        hot = base = user = page = pyrows = pyarrow = {}
        for label, target, ckpt, projections, page_every in (
            ("file DuckDB, hot tier + flusher (evlog)", "file-hot", args.flush_every, None, None),
            (
                "...the same + 2 user SQL projections  ",
                "file-user",
                args.flush_every,
                with_user_projections(),
                None,
            ),
            (
                "...the same + 1 Python projection, rows",
                "file-pyrows",
                args.flush_every,
                with_python_projection(PayloadSizesRows),
                None,
            ),
            (
                "...the same + 1 Python one, Arrow form",
                "file-pyarrow",
                args.flush_every,
                with_python_projection(PayloadSizesArrow),
                None,
            ),
            ("...the same + the live page open      ", "file-page", args.flush_every, None, every),
            ("file DuckDB, batches straight to file ", "file-direct", 0.0, None, None),
            ("baseline :memory: DuckDB              ", ":memory:", 0.0, None, None),
        ):
            if target.strip(":") not in args.variants:
                continue
            db = workdir / f"e2e-{rate}-{target.strip(':')}.db"
            duck: Path | str = target if target == ":memory:" else db.with_suffix(".duckdb")
            r = await follow_run(
                db, duck, rate, args.seconds, args.warmup, ckpt, projections, page_every
            )
            extra = ""
            if r["flushes"]:
                c = sorted(r["flushes"])
                extra = f"  [{len(c)} flushes to the file, longest {c[-1] * 1e3:.0f} ms]"
            print(f"  {rate:6d}/s {label} {fmt(r)}{extra}")
            if target == ":memory:":
                base = r
            elif target == "file-hot":
                hot = r
            elif target == "file-user":
                user = r
            elif target == "file-pyrows":
                pyrows = r
            elif target == "file-pyarrow":
                pyarrow = r
            elif target == "file-page":
                page = r
                pg = r["page"]
                assert pg["points"] > 0 and pg["panel_requests"] > 0 and not pg["errors"], pg
                print(
                    f"           the page read {pg['points']} pipeline points and made"
                    f" {pg['panel_requests']} panel requests (all panels every {every:g} s,"
                    f" longest round {pg['panel_ms_max']:.0f} ms)"
                )
        for what, a, b in (
            ("evlog(file) / :memory: baseline", hot, base),
            ("with 2 user projections / built-ins alone", user, hot),
            ("with the live page open / without", page, hot),
            ("with 1 Python projection, row form / built-ins alone", pyrows, hot),
            ("with 1 Python projection, Arrow form / built-ins alone", pyarrow, hot),
        ):
            if a and b:
                print(
                    f"           {what}: p50 {a['p50'] / b['p50']:.2f}x,"
                    f" p99 {a['p99'] / b['p99']:.2f}x, follower CPU per event"
                    f" {a['cpu_us_per_event'] / b['cpu_us_per_event']:.2f}x"
                    f" ({a['cpu_us_per_event'] - b['cpu_us_per_event']:+.1f} µs per event)"
                )
    rebuild_s, scan_s = await rebuild_run(workdir, args.rebuild_events)
    n = args.rebuild_events
    print(
        f"rebuild of {n} events into all projections: {rebuild_s:.2f} s ({n / rebuild_s:,.0f}"
        f" events/s); raw sqlite3 scan of the same rows {scan_s:.2f} s"
        f" ({n / scan_s:,.0f}/s), ratio {rebuild_s / scan_s:.1f}x"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--seconds", type=float)
    p.add_argument("--warmup", type=float)
    p.add_argument("--flush-every", type=float, default=1.0)
    p.add_argument("--rebuild-events", type=int)
    p.add_argument(
        "--variants",
        type=lambda s: s.split(","),
        default=VARIANTS,
        help=f"which runs, of {','.join(VARIANTS)} (default: all)",
    )
    p.add_argument(
        "--page-every", type=float, default=5.0, help="seconds between the open page's refreshes"
    )
    p.add_argument(
        "--log", help="append -> visible with this log (e.g. nats://...) beside the SQLite log"
    )
    args = p.parse_args()
    if args.log:
        from .scaleout import compare_with

        rates = args.rates or ([500] if args.quick else [1000, 5000])
        seconds = args.seconds or (2.0 if args.quick else 20.0)
        with tempfile.TemporaryDirectory(prefix="evlog-e2e-") as d:
            compare = compare_with(
                args.log, Path(d), phases=("visible",), rates=[], seconds=seconds,
                e2e_rates=tuple(rates), quick=args.quick,
            )  # fmt: skip
            asyncio.run(compare)
        return
    args.rates = args.rates or ([1000] if args.quick else [1000, 10000])
    args.seconds = args.seconds or (2.0 if args.quick else 60.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 2.0)
    args.rebuild_events = args.rebuild_events or (20_000 if args.quick else 1_000_000)
    args.loop_name = install_uvloop()
    with tempfile.TemporaryDirectory(prefix="evlog-e2e-") as d:
        asyncio.run(main_async(args, Path(d)))


if __name__ == "__main__":
    main()
