"""The load test: offered rate stepped up until the pipeline breaks, and a report saying where.

Each step starts a fresh log and analytics file, runs producer processes (producer.py,
several threads each, so the GIL is not the limit) that offer a fixed rate on a schedule (open
loop: every event is stamped with its intended send time, so a stall cannot hide as a slower
offer), and follows the log into a file-backed DuckDB in this process. Per event it records
read->commit, commit->visible and read->visible; per step the achieved rate, projector lag and
CPU. The breaking point is the highest offered rate whose p99 read->visible stays within the
budget while the projector keeps up (achieved >= 95% of offered, backlog drained within 1 s).

    evlog loadtest                      # 1k .. 50k events/s, 20 s a step, report in ./loadtest/
    evlog loadtest --quick              # seconds; what CI runs
    python -m evlog.loadtest.runner --rates 1000,10000 --seconds 60 --out docs/
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson

from evlog.eventlog import EventLog
from evlog.live.histogram import Histogram
from evlog.live.looplag import LOADTEST_INTERVAL_S
from evlog.live.metrics import STAGES, LiveMetrics
from evlog.projector import Projector
from evlog.runtime import settle_in

from .chart import Series, line_chart_svg
from .machine import install_uvloop, proc_stat_cpu
from .producer import run_producer_measured

DEFAULT_RATES = (1000, 2000, 3000, 5000, 10_000, 20_000, 50_000)
KEEP_UP = 0.95
DRAIN_S = 1.0


@dataclass
class Step:
    offered: int
    seconds: float
    achieved: float = 0.0
    histograms: dict[str, Histogram] = field(
        default_factory=lambda: {s: Histogram() for s in STAGES}
    )
    max_lag_events: int = 0
    max_lag_s: float = 0.0
    drain_s: float = 0.0
    machine_cpu: float = 0.0  # share of all cores busy during the step
    follower_cpu: float = 0.0  # this process, in cores
    follower_us_per_event: float = 0.0  # this process's CPU per event it applied
    producer_us_per_event: float = 0.0  # the producer processes' CPU per event they appended
    # How late the follower's event loop ran a 1 ms heartbeat (ns), warm-up left out.
    loop_lag: Histogram = field(default_factory=Histogram)

    def ms(self, stage: str, q: float) -> float:
        return self.histograms[stage].percentile(q) / 1e6

    def max_ms(self, stage: str) -> float:
        return self.histograms[stage].max_ns / 1e6

    def keeps_up(self) -> bool:
        """Throughput: the producers got their rate in and the projector drained its backlog."""
        return self.achieved >= KEEP_UP * self.offered and self.drain_s <= DRAIN_S

    def ok(self, budget_ms: float) -> bool:
        return (
            self.histograms["read_to_visible"].total > 0
            and self.ms("read_to_visible", 99) <= budget_ms
            and self.keeps_up()
        )


def _cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies over all cores, from /proc/stat (0, 0 where there is none)."""
    parts = proc_stat_cpu()
    if parts is None:
        return 0.0, 0.0
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0.0)
    return sum(parts) - idle, sum(parts)


async def run_step(
    workdir: Path,
    offered: int,
    seconds: float,
    warmup: float,
    producers: int,
    threads: int,
    via: str = "direct",
) -> Step:
    """One step. `via`: the producers append to the log themselves ("direct"), or send to an
    `evlog serve` intake in this process over HTTP ("http") or its Unix socket ("socket"),
    which appends (the read stamp is then the request's arrival)."""
    step = Step(offered, seconds)
    db, duck = workdir / f"step-{offered}.db", workdir / f"step-{offered}.duckdb"
    async with await EventLog.open(db):
        pass  # create the file; producers append, this process only reads
    skip_before = time.time_ns() + int(warmup * 1e9)
    async with (
        await EventLog.open(db, writable=via != "direct") as log,
        await Projector.open(log, duck) as pj,
        _intake(log, workdir, via) as url,
    ):
        # The follower's own live metrics are the step's figures, warm-up left out.
        metrics = LiveMetrics(since_ns=skip_before)
        metrics.loop.busy = lambda: True  # a heartbeat all through the step, every 5 ms
        metrics.loop.interval_s = LOADTEST_INTERVAL_S
        pj.subscribe(metrics.observe)
        step.histograms = metrics.histograms
        settle_in()  # as `evlog project --follow` and `evlog watch` do
        follower = asyncio.create_task(pj.follow())
        heartbeat = asyncio.create_task(metrics.loop.beat())
        busy0, total0 = _cpu_times()
        own0 = time.process_time()
        applied0 = pj.applied_events
        t0 = time.perf_counter()
        waiting = [
            asyncio.create_task(
                run_producer_measured(
                    db,
                    offered / producers,
                    seconds + warmup,
                    threads=threads,
                    tag=f"p{i}",
                    via=url,
                    token=TOKEN,
                )
            )
            for i in range(producers)
        ]
        warm = False
        while not all(w.done() for w in waiting):
            await asyncio.sleep(0.1)
            if not warm and time.time_ns() >= skip_before:
                metrics.loop.reset()  # the warm-up's heartbeats left out, as its events are
                warm = True
            _, lag, age = await pj.lag()
            step.max_lag_events = max(step.max_lag_events, lag)
            step.max_lag_s = max(step.max_lag_s, age)
        produced = [w.result() for w in waiting]
        step.achieved = sum(p.rate for p in produced)
        events = sum(p.events for p in produced)
        step.producer_us_per_event = (
            sum(p.cpu_s for p in produced) / events * 1e6 if events else 0.0
        )
        drain0 = time.perf_counter()
        head = await log.head()
        await asyncio.wait_for(pj.wait_for(head), 300)
        step.drain_s = time.perf_counter() - drain0
        busy1, total1 = _cpu_times()
        own_s = time.process_time() - own0
        step.follower_cpu = own_s / (time.perf_counter() - t0)
        applied = pj.applied_events - applied0
        step.follower_us_per_event = own_s / applied * 1e6 if applied else 0.0
        heartbeat.cancel()
        step.loop_lag = metrics.loop.histogram
        step.machine_cpu = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    await asyncio.to_thread(_remove_files, db, duck)
    return step


TOKEN = "loadtest"


@contextlib.asynccontextmanager
async def _intake(log: EventLog, workdir: Path, via: str) -> AsyncIterator[str | None]:
    """`evlog serve`'s intake over `log` for `via` "http" or "socket" (yields the URL the
    producers send to), nothing for "direct"."""
    if via == "direct":
        yield None
        return
    from evlog.serve.counters import ServeCounters
    from evlog.serve.http import HttpSettings, serve_http
    from evlog.serve.intake import Intake

    sock = workdir / "push.sock" if via == "socket" else None
    port = None if via == "socket" else 0
    settings = HttpSettings(TOKEN)
    async with serve_http(Intake(log), ServeCounters(), settings, "127.0.0.1", port, sock) as at:
        yield f"unix:{sock}" if sock else f"http://{at[0]}:{at[1]}" if at else None


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": f"{os.cpu_count()} cores, {model}",
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "duckdb": duckdb.__version__,
    }


def breaking_sentence(steps: list[Step], budget_ms: float) -> str:
    return _latency_sentence(steps, budget_ms) + " " + _throughput_sentence(steps)


def _throughput_sentence(steps: list[Step]) -> str:
    up = [s for s in steps if s.keeps_up()]
    down = [s for s in steps if not s.keeps_up()]
    if not down:
        top = max(steps, key=lambda s: s.offered)
        return f"Throughput kept up at every step, to {top.offered:,} events/s."
    first = min(down, key=lambda s: s.offered)
    best = max((s for s in up if s.offered < first.offered), key=lambda s: s.offered, default=None)
    kept = f"kept up to {best.offered:,} events/s" if best else "never kept up"
    return (
        f"Throughput {kept}; at {first.offered:,}/s the producers achieved"
        f" {first.achieved:,.0f}/s and the backlog took {first.drain_s:.1f} s to drain."
    )


def _latency_sentence(steps: list[Step], budget_ms: float) -> str:
    good = [s for s in steps if s.ok(budget_ms)]
    bad = [s for s in steps if not s.ok(budget_ms)]
    if not good:
        return (
            f"No step met the budget: even {steps[0].offered:,} events/s had p99 read->visible"
            f" {steps[0].ms('read_to_visible', 99):.1f} ms (budget {budget_ms:g} ms)."
        )
    best = max(good, key=lambda s: s.offered)
    first_bad = min(
        (s for s in bad if s.offered > best.offered), key=lambda s: s.offered, default=None
    )
    if first_bad is None:
        return (
            f"No breaking point up to {best.offered:,} events/s: p99 read->visible"
            f" {best.ms('read_to_visible', 99):.1f} ms within the {budget_ms:g} ms budget."
        )
    why = []
    if first_bad.ms("read_to_visible", 99) > budget_ms:
        why.append(f"p99 read->visible {first_bad.ms('read_to_visible', 99):.1f} ms")
    if first_bad.achieved < KEEP_UP * first_bad.offered:
        why.append(f"producers achieved only {first_bad.achieved:,.0f}/s")
    if first_bad.drain_s > DRAIN_S:
        why.append(f"the projector needed {first_bad.drain_s:.1f} s to drain its backlog")
    return (
        f"The breaking point is between {best.offered:,} and {first_bad.offered:,} events/s:"
        f" at {best.offered:,}/s p99 read->visible was {best.ms('read_to_visible', 99):.1f} ms"
        f" (budget {budget_ms:g} ms); at {first_bad.offered:,}/s {', '.join(why)}."
    )


def markdown(steps: list[Step], args: argparse.Namespace, chart_name: str) -> str:
    m = machine()
    lines = [
        "# evlog load test",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `{args.command}`.",
        "",
        f"**{breaking_sentence(steps, args.budget_ms)}**",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in m.items() if v) + ".",
        "",
        f"Each step: a fresh log and file-backed DuckDB, {args.producers} producer processes x"
        f" {args.threads} threads offering the rate on a fixed schedule (open loop) for"
        f" {args.seconds:g} s after {args.warmup:g} s of warm-up (not counted), the projector"
        " following in the load-test process with the hot tier and a flush to the file every"
        " second. Latency is measured from each event's intended send time to the return of the"
        " DuckDB commit that made it visible. Percentiles from an HDR histogram (within 1%).",
        "",
        f"![latency percentiles vs offered rate]({chart_name})",
        "",
        "| offered/s | achieved/s | read->commit p50 / p99 ms | commit->visible p50 / p99 ms"
        " | read->visible p50 / p99 / p99.9 / max ms | max lag (events, s) | drain s"
        " | CPU machine / follower | CPU µs/event follower / producers | loop lag p99 / max ms"
        " | within budget |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for s in steps:
        lines.append(
            f"| {s.offered:,} | {s.achieved:,.0f}"
            f" | {s.ms('read_to_commit', 50):.2f} / {s.ms('read_to_commit', 99):.2f}"
            f" | {s.ms('commit_to_visible', 50):.2f} / {s.ms('commit_to_visible', 99):.2f}"
            f" | {s.ms('read_to_visible', 50):.2f} / {s.ms('read_to_visible', 99):.2f}"
            f" / {s.ms('read_to_visible', 99.9):.2f} / {s.max_ms('read_to_visible'):.1f}"
            f" | {s.max_lag_events:,}, {s.max_lag_s:.2f} | {s.drain_s:.2f}"
            f" | {s.machine_cpu:.0%} / {s.follower_cpu:.2f} cores"
            f" | {s.follower_us_per_event:.0f} / {s.producer_us_per_event:.0f}"
            f" | {s.loop_lag.percentile(99) / 1e6:.2f} / {s.loop_lag.max_ns / 1e6:.1f}"
            f" | {'yes' if s.ok(args.budget_ms) else '**no**'} |"
        )
    lines += [
        "",
        "Reading it: *read->commit* is the producer's side (the schedule to the SQLite commit,"
        " including time queued behind the group commit); *commit->visible* is the projector's"
        " (the follow poll, the DuckDB transaction). *CPU µs/event* is CPU time (user + system)"
        " per event: the follower's (this process: projector, log reads) per event it applied,"
        " the producers' per event they appended. *Loop lag* is how late the follower's event"
        f" loop ran a {LOADTEST_INTERVAL_S * 1e3:g} ms heartbeat timer: time the loop was"
        " blocked or starved of CPU (the heartbeat's own CPU, ~0.2 ms per beat, is in the"
        " follower's figure)."
        " A step fails when p99 read->visible is over"
        f" budget, the producers reach less than {KEEP_UP:.0%} of the offered rate, or the"
        f" backlog takes more than {DRAIN_S:g} s to drain after the producers stop.",
        "",
    ]
    return "\n".join(lines)


def chart(steps: list[Step], budget_ms: float) -> str:
    xs = [float(s.offered) for s in steps]
    series = [
        Series(f"read->visible {label}", xs, [s.ms("read_to_visible", q) for s in steps], colour)
        for label, q, colour in (("p50", 50, "#1b9e77"), ("p99", 99, "#d95f02"),
                                 ("p99.9", 99.9, "#7570b3"))
    ]  # fmt: skip
    series.append(
        Series("max", xs, [s.max_ms("read_to_visible") for s in steps], "#999999", dashed=True)
    )
    return line_chart_svg(
        series,
        title="evlog: append -> visible in DuckDB vs offered load",
        x_label="offered events/s (log)",
        y_label="latency ms (log)",
        hline=(budget_ms, f"budget {budget_ms:g} ms"),
    )


def _remove_files(db: Path, duck: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    for p in duck.parent.glob(duck.name + "*"):
        p.unlink(missing_ok=True)


async def run(args: argparse.Namespace) -> list[Step]:
    out = Path(args.out)
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    steps: list[Step] = []
    failures = 0
    print(
        f"evlog loadtest: rates {', '.join(f'{r:,}' for r in args.rates)} events/s,"
        f" {args.seconds:g} s each, {args.producers} producers x {args.threads} threads,"
        f" budget {args.budget_ms:g} ms",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="evlog-loadtest-", dir=args.tmp) as tmp:
        for rate in args.rates:
            s = await run_step(
                Path(tmp), rate, args.seconds, args.warmup, args.producers, args.threads,
                args.via,
            )  # fmt: skip
            steps.append(s)
            print(
                f"  {rate:>7,}/s offered  {s.achieved:>9,.0f}/s achieved  read->visible p50"
                f" {s.ms('read_to_visible', 50):7.2f} ms  p99 {s.ms('read_to_visible', 99):8.2f} ms"
                f"  max {s.max_ms('read_to_visible'):8.1f} ms  lag max {s.max_lag_events:,}"
                f"  drain {s.drain_s:.2f} s  cpu/event {s.follower_us_per_event:.0f}"
                f"+{s.producer_us_per_event:.0f} µs  loop lag max"
                f" {s.loop_lag.max_ns / 1e6:.1f} ms  {'ok' if s.ok(args.budget_ms) else 'BROKEN'}",
                file=sys.stderr,
                flush=True,
            )
            # Steps over the latency budget go on (the throughput ceiling is worth knowing);
            # two steps in a row that cannot keep up end the run.
            failures = 0 if s.keeps_up() else failures + 1
            if failures >= 2:
                break
    chart_name = f"{args.name}.svg"
    (out / chart_name).write_text(chart(steps, args.budget_ms))
    (out / f"{args.name}.md").write_text(markdown(steps, args, chart_name))
    (out / f"{args.name}.json").write_bytes(
        orjson.dumps(summary(steps, args), option=orjson.OPT_INDENT_2)
    )
    print(
        f"report: {out / (args.name + '.md')}, {out / chart_name} and {args.name}.json",
        file=sys.stderr,
    )
    return steps


def sustained_rate(steps: list[Step], budget_ms: float) -> int:
    """The highest offered rate that stayed within the budget and kept up (0: none did)."""
    return max((s.offered for s in steps if s.ok(budget_ms)), default=0)


def summary(steps: list[Step], args: argparse.Namespace) -> dict[str, Any]:
    """The run as JSON (`evlog loadtest --json`, the report's .json): every step's figures."""
    return {
        "command": args.command,
        "budget_ms": args.budget_ms,
        "sustained_rate": sustained_rate(steps, args.budget_ms),
        "verdict": breaking_sentence(steps, args.budget_ms),
        "steps": [
            {
                "offered": s.offered,
                "seconds": s.seconds,
                "achieved": round(s.achieved, 1),
                "keeps_up": s.keeps_up(),
                "within_budget": s.ok(args.budget_ms),
                "latency_ms": {
                    stage: {
                        "count": h.total,
                        **{f"p{q:g}": round(s.ms(stage, q), 3) for q in (50, 90, 99, 99.9)},
                        "max": round(s.max_ms(stage), 3),
                    }
                    for stage, h in s.histograms.items()
                },
                "max_lag_events": s.max_lag_events,
                "max_lag_s": round(s.max_lag_s, 3),
                "drain_s": round(s.drain_s, 3),
                "machine_cpu": round(s.machine_cpu, 3),
                "follower_cpu_cores": round(s.follower_cpu, 3),
                "cpu_us_per_event": {
                    "follower": round(s.follower_us_per_event, 1),
                    "producers": round(s.producer_us_per_event, 1),
                },
                "loop_lag_ms": {
                    "p50": round(s.loop_lag.percentile(50) / 1e6, 3),
                    "p99": round(s.loop_lag.percentile(99) / 1e6, 3),
                    "max": round(s.loop_lag.max_ns / 1e6, 3),
                },
            }
            for s in steps
        ],
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few seconds (CI)")
    p.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--seconds", type=float)
    p.add_argument("--warmup", type=float)
    p.add_argument("--producers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--budget-ms", type=float, default=50.0)
    p.add_argument("--out", default="loadtest")
    p.add_argument("--name", default="load-test-report")
    p.add_argument("--tmp", default=None, help="where the step files go (default: system temp)")
    p.add_argument(
        "--via", choices=("direct", "http", "socket"), default="direct",
        help="producers append to the log, or send to evlog serve over HTTP or its Unix socket",
    )  # fmt: skip
    return p


def complete(args: argparse.Namespace, command: str) -> argparse.Namespace:
    args.rates = args.rates or ([500, 2000] if args.quick else list(DEFAULT_RATES))
    args.seconds = args.seconds or (1.5 if args.quick else 20.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 2.0)
    args.command = command
    return args


def main() -> None:
    command = "python -m evlog.loadtest.runner " + " ".join(sys.argv[1:])
    args = complete(parser().parse_args(), command)
    print(f"loop: {install_uvloop()}", file=sys.stderr)
    steps = asyncio.run(run(args))
    print(breaking_sentence(steps, args.budget_ms))


if __name__ == "__main__":
    main()
