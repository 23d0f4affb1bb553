"""bench/append: evlog append latency at fixed offered rates (open loop) and bulk append rate,
beside raw sqlite3 single-row commits and the eventsourcing library's SQLite recorder, same run;
ends with the log's targets (issue 2), met or not in this run.

    python -m bench.append            # full: 1k, 10k, 50k events/s for 10 s each
    python -m bench.append --quick   # what CI runs: seconds
    python -m bench.append --log nats://127.0.0.1:4222  # that log beside the SQLite log instead
                                     # (asyncio producers, open loop; bulk; `evlog nats up` first)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evlog.eventlog import Durability, EventLog, NewEvent

from .handoff import HandoffFloor, RawSqliteWriter, ThreadSubmitter, raw_sqlite
from .stats import cpu_steal_ms, fmt_latency, install_uvloop, latency_summary_us, precise_sleeps

PAYLOAD = {"author": "alice", "text": "hello from the benchmark", "n": 0}
# The log's targets (issue 2), judged at the end of every run.
TARGET_P99_US = 1000.0  # at 1k and 10k events/s offered, threads
TARGET_BULK_PER_S = 200_000
TARGET_ES_RATIO = 2.0  # single appends, 64 tasks, synchronous=NORMAL
TARGET_SEQUENTIAL_P50_US = 60.0  # one caller awaiting each append (issue 19)


def raw_sqlite_single_commits(path: Path, n: int) -> tuple[float, dict[str, float]]:
    """The floor: one INSERT + COMMIT per event on a bare sqlite3 connection, WAL, NORMAL."""
    conn = raw_sqlite(path)
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter_ns()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO e (stream, version, key, payload, t) VALUES (?,?,?,?,?)",
            ("s", i + 1, f"k{i:012d}", '{"author":"alice","text":"hello"}', time.time_ns()),
        )
        conn.execute("COMMIT")
        lat.append(time.perf_counter_ns() - t0)
    rate = n / (time.perf_counter() - start)
    conn.close()
    return rate, latency_summary_us(lat)


def raw_sqlite_bulk(path: Path, n: int, batch: int) -> float:
    conn = raw_sqlite(path)
    import orjson

    start = time.perf_counter()
    for b in range(0, n, batch):
        rows = [
            ("s", i + 1, f"k{i:012d}", orjson.dumps(PAYLOAD).decode(), time.time_ns())
            for i in range(b, min(n, b + batch))
        ]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO e (stream, version, key, payload, t) VALUES (?,?,?,?,?)", rows
        )
        conn.execute("COMMIT")
    rate = n / (time.perf_counter() - start)
    conn.close()
    return rate


def bytes_written() -> int | None:
    """Bytes this process has handed to write() so far (Linux /proc/self/io `wchar`: WAL frames,
    checkpoints, everything), or None where there is no such file."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


WRITTEN: dict[str, float] = {}  # bytes written per append, by what appended (filled as it runs)


def _written(what: str) -> str:
    """ "; 13.3 KB written per append" (each commit's WAL frames and its share of checkpoints:
    the pages a commit changes, docs/performance.md#one-caller), or "" without /proc."""
    per = WRITTEN.get(what)
    return "" if per is None else f"; {per / 1024:.1f} KB written per append"


def eventsourcing_recorder(path: Path, n: int, synchronous: str) -> float | None:
    """Single-event appends through eventsourcing's SQLite aggregate recorder, if installed.
    It opens WAL with SQLite's default synchronous=FULL; `synchronous` sets it like-for-like."""
    try:
        import eventsourcing.sqlite as es_sqlite
        from eventsourcing.persistence import StoredEvent
    except ImportError:
        return None

    class _Sqlite3Shim:
        def __getattr__(self, name: str) -> Any:
            return getattr(sqlite3, name)

        @staticmethod
        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn = sqlite3.connect(*args, **kwargs)
            conn.execute(f"PRAGMA synchronous={synchronous}")
            return conn

    saved = es_sqlite.sqlite3
    es_sqlite.sqlite3 = _Sqlite3Shim()  # type: ignore[assignment]
    try:
        datastore = es_sqlite.SQLiteDatastore(str(path))
        recorder = es_sqlite.SQLiteAggregateRecorder(datastore, events_table_name="stored_events")
        recorder.create_table()
        start, before = time.perf_counter(), bytes_written()
        for _ in range(n):
            recorder.insert_events(
                [
                    StoredEvent(
                        originator_id=uuid.uuid4(),
                        originator_version=1,
                        topic="bench:Event",
                        state=b'{"author":"alice","text":"hello"}',
                    )
                ]
            )
        rate = n / (time.perf_counter() - start)
        after = bytes_written()
        if before is not None and after is not None:
            WRITTEN[f"eventsourcing {synchronous}"] = (after - before) / n
        return rate
    finally:
        es_sqlite.sqlite3 = saved


def flush_page_cache() -> None:
    """Write out every dirty page before a timed run. Without it, the kernel writes back what
    the previous phase left (30 s after it was written, on Linux's defaults) during the next
    one, and that I/O is charged to whichever run it lands in: the 10k/s open loop right after
    the single-append runs measured p99 1.2 ms where the same run alone measured 0.7-1.0 ms."""
    if hasattr(os, "sync"):
        os.sync()


async def single_appends(log: EventLog, n: int, tasks: int, tag: str) -> tuple[float, list[int]]:
    """`tasks` concurrent callers, each awaiting one single-event append at a time."""
    lat: list[int] = []

    async def caller(t: int) -> None:
        for i in range(n // tasks):
            t0 = time.perf_counter_ns()
            await log.append(NewEvent(f"single-{t}", "bench", PAYLOAD, key=f"{tag}:{t}:{i:012d}"))
            lat.append(time.perf_counter_ns() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(caller(t) for t in range(tasks)))
    return len(lat) / (time.perf_counter() - start), lat


async def open_loop(
    target: EventLog | ThreadSubmitter,
    rate: int,
    seconds: float,
    producers: int,
    threads: bool,
    tag: str,
) -> dict[str, float]:
    """Each producer offers rate/producers events/s on a fixed schedule; latency counts from the
    intended send time, so a stall delays (and is charged to) every event scheduled during it.

    threads=True: producers are threads sleeping precisely and calling the thread-safe submit:
    this measures the log itself (or a baseline of bench/handoff.py). threads=False: asyncio
    tasks calling the log's async API; the loop's timers tick in 1 ms steps, so up to 1 ms of
    schedule lateness is part of those figures."""
    latencies: list[int] = []  # from the intended send time
    service: list[int] = []  # from the moment submit() was called
    per = rate / producers
    count = int(rate * seconds) // producers
    interval_ns = 1e9 / per
    # Futures are not kept (a heap of live futures makes the GC pause the whole process):
    # completion is counted in the callback instead.
    total = count * producers
    all_done = threading.Event()

    def record(intended: int, submitted: int) -> Callable[[object], None]:
        def done(_f: object) -> None:
            now = time.perf_counter_ns()
            latencies.append(now - intended)
            service.append(now - submitted)
            if len(latencies) == total:
                all_done.set()

        return done

    def schedule(pid: int, start: int, i: int, submit: Callable[..., Any]) -> int:
        due = min(count, int((time.perf_counter_ns() - start) / interval_ns) + 1)
        while i < due:
            submitted = time.perf_counter_ns()
            fut = submit([NewEvent(f"bench-{pid}", "bench", PAYLOAD, key=f"{tag}{pid}:{i:012d}")])
            fut.add_done_callback(record(start + int(i * interval_ns), submitted))
            i += 1
        return i

    def thread_producer(pid: int) -> None:
        precise_sleeps()
        start = time.perf_counter_ns()
        i = 0
        while i < count:
            i = schedule(pid, start, i, target.submit_threadsafe)
            time.sleep(max(0.0, (start + i * interval_ns - time.perf_counter_ns()) / 1e9))

    async def task_producer(pid: int) -> None:
        assert isinstance(target, EventLog), "asyncio producers call the log's async API"
        start = time.perf_counter_ns()
        i = 0
        while i < count:
            i = schedule(pid, start, i, target.submit)
            # uvloop rounds sub-millisecond timers to 0 (a busy spin): never sleep less than 1 ms.
            await asyncio.sleep(
                max(0.001, (start + i * interval_ns - time.perf_counter_ns()) / 1e9)
            )

    steal0 = cpu_steal_ms()
    t0 = time.perf_counter()
    if threads:
        await asyncio.gather(*(asyncio.to_thread(thread_producer, p) for p in range(producers)))
    else:
        await asyncio.gather(*(task_producer(p) for p in range(producers)))
    await asyncio.to_thread(all_done.wait)
    elapsed = time.perf_counter() - t0
    summary = latency_summary_us(latencies)
    summary["achieved"] = len(latencies) / elapsed
    summary["service_p99_us"] = latency_summary_us(service)["p99_us"]
    steal1 = cpu_steal_ms()
    summary["steal_ms"] = float("nan") if steal0 is None or steal1 is None else steal1 - steal0
    return summary


async def warm_then_measure(
    target: EventLog | ThreadSubmitter,
    rate: int,
    args: argparse.Namespace,
    threads: bool,
    tag: str,
) -> dict[str, float]:
    """An open-loop run at `rate` after a warm-up at that rate, with the page cache written out
    in between so the timed run pays for no earlier phase's write-back."""
    await open_loop(target, rate, args.warmup, args.producers, threads, f"w{tag}")
    await asyncio.to_thread(flush_page_cache)
    return await open_loop(target, rate, args.seconds, args.producers, threads, tag)


async def bulk(log: EventLog, n: int, batch: int) -> float:
    """append_many in batches, two in flight so encoding overlaps the previous commit."""
    start = time.perf_counter()
    pending: list[asyncio.Future[Any]] = []
    for b in range(0, n, batch):
        events = [
            NewEvent("bulk", "bench", PAYLOAD, key=f"bulk:{i:012d}")
            for i in range(b, min(n, b + batch))
        ]
        pending.append(log.submit(events))
        if len(pending) >= 2:
            await pending.pop(0)
    await asyncio.gather(*pending)
    return n / (time.perf_counter() - start)


async def main_async(args: argparse.Namespace, workdir: Path) -> None:
    loop_name = args.loop_name
    targets: list[tuple[str, bool, str]] = []  # (what, met, the figure)
    print(f"bench/append  loop={loop_name}  cpus={os.cpu_count()}  quick={args.quick}")
    single_n = 2_000 if args.quick else 50_000
    raw_rate, raw_lat = raw_sqlite_single_commits(workdir / "raw.db", single_n)
    print(f"raw sqlite3 single-row commit : {raw_rate:10.0f} commits/s  {fmt_latency(raw_lat)}")
    es_rates = {
        sync: eventsourcing_recorder(workdir / f"es-{sync}.db", single_n, sync)
        for sync in ("FULL", "NORMAL")
    }
    if es_rates["FULL"] is None:
        print("eventsourcing recorder        : not installed (pip install eventsourcing)")
    for sync, es_rate in es_rates.items():
        if es_rate is not None:
            print(
                f"eventsourcing recorder {sync:6s}: {es_rate:10.0f} appends/s (one event each)"
                + _written(f"eventsourcing {sync}")
            )

    for durability in (Durability.FULL, Durability.NORMAL):
        path = workdir / f"single-{durability.value}.db"
        async with await EventLog.open(path, durability=durability) as log:
            es_rate = es_rates[durability.value.upper()]
            for tasks in (1, 16, 64):
                before = bytes_written()
                rate, lat = await single_appends(log, single_n, tasks, f"t{tasks}")
                after = bytes_written()
                what = f"evlog {durability.value} {tasks}"
                if before is not None and after is not None:
                    WRITTEN[what] = (after - before) / single_n
                ratio = f"  {rate / es_rate:5.2f}x eventsourcing" if es_rate else ""
                if es_rate and tasks == 1 and durability is Durability.NORMAL:
                    p50 = latency_summary_us(lat)["p50_us"]
                    targets.append((
                        f"one caller awaiting each append: >= 1x eventsourcing,"
                        f" p50 <= {TARGET_SEQUENTIAL_P50_US:g} µs",
                        rate >= es_rate and p50 <= TARGET_SEQUENTIAL_P50_US,
                        f"{rate / es_rate:.2f}x, p50 {p50:.0f} µs",
                    ))  # fmt: skip
                if es_rate and tasks == 64 and durability is Durability.NORMAL:
                    targets.append((
                        f"single appends, 64 tasks, >= {TARGET_ES_RATIO:g}x eventsourcing",
                        rate / es_rate >= TARGET_ES_RATIO, f"{rate / es_rate:.2f}x",
                    ))  # fmt: skip
                print(
                    f"evlog {durability.value:6s} append, {tasks:2d} task(s):"
                    f" {rate:10.0f} appends/s"
                    f"  {fmt_latency(latency_summary_us(lat))}{ratio}{_written(what)}"
                )

    async with await EventLog.open(workdir / "events.db") as log:
        print(
            f"open loop, {args.seconds:g} s per rate after {args.warmup:g} s of warm-up at that"
            f" rate, {args.producers} producer(s); latency from the intended send time:"
        )
        for threads in (True, False):
            kind = "threads, submit_threadsafe" if threads else "asyncio tasks, await submit"
            print(f" {kind}:")
            for rate in args.rates:
                tag = f"{kind[0]}{rate}"
                s = await warm_then_measure(log, rate, args, threads, tag)
                extra = "" if threads else f"  (from submit: p99 {s['service_p99_us']:.1f} µs)"
                extra += f"  [VM steal {s['steal_ms']:.0f} ms]"
                print(
                    f"  offered {rate:7d}/s achieved {s['achieved']:8.0f}/s"
                    f"  {fmt_latency(s)}{extra}"
                )
                if not threads:
                    continue
                # The same producers and schedule, handing off to a plain thread instead.
                context = []
                baselines: tuple[tuple[str, str, Callable[[], HandoffFloor]], ...] = (
                    ("raw sqlite3 writer thread", "",
                     functools.partial(RawSqliteWriter, workdir / f"raw-open{rate}.db")),
                    ("hand-off floor", " (no writes)", HandoffFloor),
                )  # fmt: skip
                for name, aside, make in baselines:
                    baseline = make()
                    try:
                        b = await warm_then_measure(baseline, rate, args, threads, f"{tag}b")
                    finally:
                        await asyncio.to_thread(baseline.close)
                    print(
                        f"    {name + aside:27s} p50 {b['p50_us']:8.1f} µs"
                        f"  p99 {b['p99_us']:8.1f} µs  evlog p99 {s['p99_us'] / b['p99_us']:5.2f}x"
                    )
                    context.append(f"{name} {b['p99_us'] / 1000:.2f}")
                if rate in (1000, 10000):
                    targets.append((
                        f"p99 < {TARGET_P99_US / 1000:g} ms at {rate}/s offered (threads)",
                        s["p99_us"] < TARGET_P99_US,
                        f"{s['p99_us'] / 1000:.2f} ms (same run: {', '.join(context)} ms)",
                    ))  # fmt: skip
        wal = Path(f"{log.path}-wal")
        print(f"  WAL size after open-loop runs: {wal.stat().st_size / 1e6:.1f} MB")

    # Bulk: each round on fresh files for both, so neither inherits the other runs' data; rounds
    # alternate because this machine's speed drifts by 10-20% within minutes.
    bulk_n = 20_000 if args.quick else 1_000_000
    rounds = 1 if args.quick else 3
    print(f"bulk, {bulk_n} events per round in batches of {args.batch}, fresh files each round:")
    ratios, rates = [], []
    for r in range(rounds):
        await asyncio.to_thread(flush_page_cache)
        raw_bulk = raw_sqlite_bulk(workdir / f"raw_bulk{r}.db", bulk_n, args.batch)
        await asyncio.to_thread(flush_page_cache)
        async with await EventLog.open(workdir / f"bulk{r}.db") as log:
            rate = await bulk(log, bulk_n, args.batch)
        ratios.append(rate / raw_bulk)
        rates.append(rate)
        print(
            f"  append_many {rate:10.0f} events/s   raw sqlite3 executemany {raw_bulk:10.0f} rows/s"
            f"   ratio {rate / raw_bulk:4.2f}x"
        )
    print(f"  median ratio {sorted(ratios)[len(ratios) // 2]:4.2f}x")
    targets.append((
        f"bulk append_many >= {TARGET_BULK_PER_S / 1000:g}k events/s, every round",
        min(rates) >= TARGET_BULK_PER_S, f"{min(rates) / 1000:.0f}-{max(rates) / 1000:.0f}k/s",
    ))  # fmt: skip
    note = " (--quick: too short to judge; run without it)" if args.quick else ""
    print(f"targets{note}:")
    for what, met, figure in targets:
        print(f"  {'met    ' if met else 'NOT met'}  {what}: {figure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for CI")
    parser.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--warmup", type=float)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--log", help="measure this log (e.g. nats://...) beside the SQLite log")
    args = parser.parse_args()
    if args.rates is None:
        args.rates = [1000, 10000] if args.quick else [1000, 10000, 50000]
    if args.seconds is None:
        args.seconds = 0.5 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 0.2 if args.quick else 2.0
    args.loop_name = install_uvloop()
    with tempfile.TemporaryDirectory(prefix="evlog-bench-") as d:
        if args.log:
            from .scaleout import compare_with

            rates = [r for r in args.rates if r <= 10_000]
            compare = compare_with(
                args.log, Path(d), phases=("append", "bulk"), rates=rates, seconds=args.seconds,
                n_bulk=5_000 if args.quick else 200_000, quick=args.quick,
            )  # fmt: skip
            asyncio.run(compare)
            return
        asyncio.run(main_async(args, Path(d)))


if __name__ == "__main__":
    main()
