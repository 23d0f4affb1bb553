"""bench/scaleout: the log on a 3-node JetStream cluster (R3) beside the embedded SQLite log, in
one run, with the same producer and the same projector: append latency at fixed offered rates
(open loop, from each event's intended send time to its acknowledgement), bulk append rate, and
append -> visible in a file DuckDB at a fixed rate (producer in a process of its own). The
SQLite log is the baseline (ratio).

    python -m bench.scaleout                   # 1k and 10k events/s 20 s each, bulk 200k, e2e 5k/s
    python -m bench.scaleout --quick           # CI: seconds
    python -m bench.scaleout --log nats://...  # an existing cluster instead of a local one
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from evlog.eventlog import NewEvent
from evlog.eventlog.store import LogStore, is_nats, open_log
from evlog.projector import EventBatch, Projector
from evlog.projector.batch import COMMITTED, SOURCE_TIME

from .stats import cpu_steal_ms, install_uvloop, percentile, run_in_tempdir

TEXT = "x" * 120
TICK_S = 0.001


def _events(tag: str, start: int, n: int, intended_ns: int) -> list[NewEvent]:
    return [
        NewEvent(
            f"load-{i % 8}", "tick", {"i": i, "text": TEXT},
            key=f"{tag}:{i}", source_time_ns=intended_ns,
        )
        for i in range(start, start + n)
    ]  # fmt: skip


async def open_loop(
    log: LogStore, rate: int, seconds: float, tag: str, on_ack: Callable[[int, int], None]
) -> int:
    """Append at `rate` events/s for `seconds`: each tick, the events now due go in one append
    stamped with their intended time; appends overlap (a slow ack does not hold back the
    schedule: open loop). `on_ack(intended_ns, n)` is called as each append is acknowledged."""
    started = time.time_ns()
    sent = 0
    pending: set[asyncio.Task[None]] = set()

    async def one(events: list[NewEvent], intended: int) -> None:
        await log.append_many(events)
        on_ack(intended, len(events))

    while True:
        now = time.time_ns()
        elapsed = (now - started) / 1e9
        if elapsed >= seconds:
            break
        due = int(elapsed * rate) - sent
        while due > 0:
            n = min(due, 500)
            intended = started + int((sent + n) / rate * 1e9)
            task = asyncio.create_task(one(_events(tag, sent, n, intended), intended))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += n
            due -= n
        await asyncio.sleep(TICK_S)
    if pending:
        await asyncio.gather(*pending)
    return sent


async def append_latency(log: LogStore, rate: int, seconds: float) -> dict[str, float]:
    lat: list[int] = []

    def acked(intended: int, n: int) -> None:
        lat.extend([time.time_ns() - intended] * n)

    sent = await open_loop(log, rate, seconds, f"a{rate}-{time.time_ns()}", acked)
    lat.sort()
    return {
        "sent": sent,
        "p50": percentile(lat, 50) / 1e6,
        "p99": percentile(lat, 99) / 1e6,
        "max": lat[-1] / 1e6 if lat else float("nan"),
    }


async def bulk(log: LogStore, n: int, batch: int) -> float:
    tag = f"b-{time.time_ns()}"
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        await log.append_many(_events(tag, start, min(batch, n - start), time.time_ns()))
    return n / (time.perf_counter() - t0)


async def produce(target: str, rate: int, seconds: float) -> None:
    """The producer of the visible phase, in a process of its own (`--produce`)."""
    async with await open_log(target) as log:
        await open_loop(log, rate, seconds, f"v{rate}-{time.time_ns()}", lambda i, n: None)


async def visible(
    log: LogStore, target: str, duck: Path, rate: int, seconds: float
) -> dict[str, float]:
    """Append at `rate` from a producer process while a projector in this process follows into
    a file DuckDB (as on separate hosts): intended send -> the DuckDB commit that made the
    event visible."""
    lat: list[int] = []
    to_commit: list[int] = []  # intended send -> stored in the log (the producer's share)

    def record(batch: EventBatch) -> None:
        vis = batch.visible_ns
        for r in batch.rows:
            lat.append(vis - r[SOURCE_TIME])
            to_commit.append(r[COMMITTED] - r[SOURCE_TIME])

    async with await Projector.open(log, duck) as pj:
        await pj.catch_up()
        follower = asyncio.create_task(pj.follow(record))
        await asyncio.sleep(0.5)  # following before the first event, not catching up on it
        steal0 = cpu_steal_ms()
        producer = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.scaleout", "--produce", target,
            "--rate", str(rate), "--seconds", str(seconds),
        )  # fmt: skip
        if await producer.wait() != 0:
            raise SystemExit("the producer process failed")
        head = await log.head()
        await asyncio.wait_for(pj.wait_for(head), 120)
        steal1 = cpu_steal_ms()
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    lat.sort()
    to_commit.sort()
    return {
        "commit_p99": percentile(to_commit, 99) / 1e6,
        "n": len(lat),
        "p50": percentile(lat, 50) / 1e6,
        "p99": percentile(lat, 99) / 1e6,
        "steal_s": (steal1 - steal0) / 1e3 if steal0 is not None and steal1 is not None else -1,
    }


PHASES = ("append", "bulk", "visible")


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (Linux /proc; 0 elsewhere)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def raw_ceiling(
    url: str, n: int, in_flight: int, server_pids: list[int]
) -> tuple[float, float]:
    """The cluster's own ceiling, with no evlog code in the way: `n` messages of the bench's
    size, each with its Nats-Msg-Id, as atomic batches of 1,000 prebuilt protocol frames with
    `in_flight` batches outstanding. Returns (messages/s, cores the servers used meanwhile)."""
    from evlog.eventlog.jetstream import client

    target = client.Target.parse(f"{url}?stream=CEIL{time.time_ns()}", "CEIL")
    nc = await client.connect(target)
    try:
        await client.ensure_stream(nc, target, f"{target.stream}.>")
        body = orjson.dumps(["load-0", 1, "tick", 1, "k", {"i": 1, "text": TEXT}, None, 1, 1])
        subject = f"{target.stream}.e.bG9hZC0w"
        parts = []
        for b in range(0, n, client.MAX_BATCH):
            size = min(client.MAX_BATCH, n - b)
            tag = f"c{time.time_ns()}-{b}"
            parts.append([client.Outgoing(subject, body, {"Nats-Msg-Id": f"{tag}-{i}"})
                          for i in range(size)])  # fmt: skip
        gate = asyncio.Semaphore(in_flight)

        async def one(part: list[client.Outgoing]) -> None:
            async with gate:
                await client.publish_atomic(nc, part)

        cpu0, t0 = _cpu_s(server_pids), time.perf_counter()
        await asyncio.gather(*(one(p) for p in parts))
        wall = time.perf_counter() - t0
        return n / wall, (_cpu_s(server_pids) - cpu0) / wall
    finally:
        await nc.close()


async def measure(
    targets: list[tuple[str, str, int]],
    workdir: Path,
    *,
    rates: list[int],
    seconds: float,
    n_bulk: int,
    e2e_rates: list[int],
    phases: tuple[str, ...] = PHASES,
) -> dict[str, dict[Any, Any]]:
    """Each phase against each (name, log target, bulk batch size), one log after the other."""
    results: dict[str, dict[Any, Any]] = {}
    for name, target, batch in targets:
        r: dict[Any, Any] = {}
        async with await open_log(target) as log:
            if "append" in phases:
                for rate in rates:
                    r[rate] = await append_latency(log, rate, seconds)
            if "bulk" in phases:
                r["bulk"] = await bulk(log, n_bulk, batch)
            if "visible" in phases:
                for rate in e2e_rates:
                    duck = workdir / f"{name}-{rate}.duckdb"
                    r[("visible", rate)] = await visible(log, target, duck, rate, seconds)
        results[name] = r
    return results


def report(
    results: dict[str, dict[Any, Any]], *, rates: list[int], e2e_rates: list[int], quick: bool
) -> None:
    """Print each phase's figures per log, and the ratio of the second log to the first."""
    (base_name, base), (other_name, other) = list(results.items())[:2]
    ratio_name = f"{other_name}/{base_name}"

    def side_by_side(key: Any, rate: int, line: Callable[..., str], after: str) -> None:
        """Each log's line for phase `key`, then the ratio of their p99s."""
        if key not in base:
            return
        for name, r in results.items():
            print(line(name, r[key], rate))
        ratio = other[key]["p99"] / max(base[key]["p99"], 1e-9)
        print(f"  ratio {ratio_name} p99: {ratio:.1f}x{after}")

    for rate in rates:
        side_by_side(rate, rate, _append_line, "")
    if "bulk" in base:
        for name, r in results.items():
            print(f"bulk append          {name:8s} {r['bulk']:>10,.0f} events/s")
        print(
            f"  ratio {ratio_name}: {other['bulk'] / base['bulk']:.2f}x"
            "   (target >= 100,000 events/s into R3)"
        )
    note = " (--quick: too short to judge)" if quick else ""
    for rate in e2e_rates:
        target = "   (target p99 < 50 ms at 5k/s)" if rate == 5_000 else ""
        side_by_side(("visible", rate), rate, _visible_line, target + note)


def _append_line(name: str, a: dict[str, float], rate: int) -> str:
    return (
        f"append {rate:>6,}/s offered  {name:8s} p50 {a['p50']:7.2f} ms"
        f"  p99 {a['p99']:7.2f} ms  max {a['max']:7.1f} ms  ({a['sent']:,} events)"
    )


def _visible_line(name: str, v: dict[str, float], rate: int) -> str:
    return (
        f"append->visible {rate:,}/s {name:8s} p50 {v['p50']:7.2f} ms  p99 {v['p99']:7.2f}"
        f" ms  (of which send -> stored p99 {v['commit_p99']:.1f} ms; {v['n']:,} events,"
        f" VM steal {v['steal_s']:.1f} s)"
    )


async def compare_with(
    url: str,
    workdir: Path,
    *,
    phases: tuple[str, ...],
    rates: list[int],
    seconds: float,
    n_bulk: int = 200_000,
    e2e_rates: tuple[int, ...] = (),
    quick: bool = False,
) -> None:
    """The SQLite log beside the log at `url`, same run (bench/append and bench/e2e `--log`)."""
    name = "nats" if is_nats(url) else "other"
    print(f"the SQLite log beside {url}  quick={quick}")
    results = await measure(
        [("sqlite", str(workdir / "events.db"), 5_000), (name, url, 999)],
        workdir,
        rates=rates,
        seconds=seconds,
        n_bulk=n_bulk,
        e2e_rates=list(e2e_rates),
        phases=phases,
    )
    report(results, rates=rates, e2e_rates=list(e2e_rates), quick=quick)


async def main_async(args: argparse.Namespace, workdir: Path) -> None:
    cluster = None
    url = args.log
    if url is None:
        from evlog.tools.nats_cluster import LocalCluster

        cluster = LocalCluster(workdir / "nats", 3, args.port)
        await asyncio.to_thread(cluster.up)
        url = cluster.url
    rates = [200, 1000] if args.quick else [1000, 10_000]
    seconds = 2.0 if args.quick else args.seconds
    n_bulk = 5_000 if args.quick else 200_000
    e2e_rates = [500] if args.quick else [5_000]
    print(f"bench/scaleout  quick={args.quick}  cluster={url}")
    pids = [n.pid for n in cluster.nodes if n.pid] if cluster is not None else []
    ceilings = []
    try:
        results = await measure(
            [
                ("sqlite", str(workdir / "events.db"), 5_000),
                ("nats-R3", f"{url}?stream=BENCH{time.time_ns()}", 999),
            ],
            workdir, rates=rates, seconds=seconds, n_bulk=n_bulk, e2e_rates=e2e_rates,
        )  # fmt: skip
        for in_flight in (1, 4):
            ceilings.append((in_flight, *await raw_ceiling(url, n_bulk, in_flight, pids)))
    finally:
        if cluster is not None:
            await asyncio.to_thread(cluster.down)
    report(results, rates=rates, e2e_rates=e2e_rates, quick=args.quick)
    for in_flight, rate, cores in ceilings:
        used = f", servers {cores:.2f} cores of {os.cpu_count()}" if pids else ""
        print(
            f"  the cluster's ceiling: {rate:>10,.0f} msg/s  (prebuilt frames with message ids,"
            f" {in_flight} atomic batch(es) in flight{used}); nats-R3 bulk / ceiling"
            f" {results['nats-R3']['bulk'] / rate:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for CI")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--log", help="an existing cluster's nats:// URL (default: start one)")
    parser.add_argument("--port", type=int, default=34222, help="the local cluster's first port")
    parser.add_argument("--produce", help=argparse.SUPPRESS)  # the visible phase's producer
    parser.add_argument("--rate", type=int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    install_uvloop()
    if args.produce:
        asyncio.run(produce(args.produce, args.rate, args.seconds))
        return
    run_in_tempdir("evlog-scaleout-", lambda workdir: main_async(args, workdir))


if __name__ == "__main__":
    main()
