"""An open-loop producer process for bench/e2e and the load test: appends `rate` events/s for
`seconds`, each stamped with its intended send time (wall clock, ns) as its source time;
straight into the log, or (`--via URL`) as NDJSON requests to `evlog serve` (http://host:port,
or unix:/path for its Unix socket), the events that fell due in a tick one request.

    python -m evlog.loadtest.producer DB RATE SECONDS [--threads N] [--tag T] [--via URL]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from evlog.eventlog import EventLog, NewEvent

from .machine import precise_sleeps

# The directory that holds the evlog package (a checkout or site-packages), for the child.
IMPORT_ROOT = str(Path(__file__).resolve().parents[2])

TEXT = "the quick brown fox jumps over the lazy dog"
SETTLE_SLICE = 500  # outcomes checked at a time
# The producer sleeps at least this long between sends: the events that fell due meanwhile go
# out together, each stamped with its own intended time (so the wait counts in its latency).
TICK_S = 0.001
_REPORT = re.compile(
    r"produced (?P<n>\d+) events in \S+ s \((?P<rate>[\d.]+)/s\); cpu (?P<cpu>[\d.]+) s"
)


@dataclass(frozen=True, slots=True)
class Produced:
    """What one producer process did: events appended, the rate it achieved (from its own
    start), and the CPU time it used (all its threads, user + system)."""

    events: int
    rate: float
    cpu_s: float


async def run_producer(
    db: Path, rate: float, seconds: float, *, threads: int = 1, tag: str = "p"
) -> float:
    """Run this module as a process of its own (so its GIL is not the caller's) and return the
    rate it achieved, as it measured it from its own start."""
    return (await run_producer_measured(db, rate, seconds, threads=threads, tag=tag)).rate


async def run_producer_measured(
    db: Path,
    rate: float,
    seconds: float,
    *,
    threads: int = 1,
    tag: str = "p",
    via: str | None = None,
    token: str = "",
) -> Produced:
    """As run_producer, with the events it appended and the CPU it used. `via`: send to
    `evlog serve` at that URL (with `token`) instead of appending to `db`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = IMPORT_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["EVLOG_SERVE_TOKEN"] = token
    extra = ["--via", via] if via else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "evlog.loadtest.producer", str(db), str(rate), str(seconds),
        "--threads", str(threads), "--tag", tag, *extra,
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, _ = await proc.communicate()
    m = _REPORT.search(out.decode())  # "produced N events in T s (R/s); cpu C s"
    if m is None:
        return Produced(0, 0.0, 0.0)
    return Produced(int(m["n"]), float(m["rate"]), float(m["cpu"]))


def produce(log: EventLog, rate: float, seconds: float, threads: int, tag: str) -> int:
    """Open loop: each thread offers rate/threads events/s on a fixed schedule and never waits
    for acknowledgements before sending the next, so a stall cannot slow the offered load."""
    per = rate / threads
    count = int(per * seconds)
    interval_ns = 1e9 / per
    done = [0]
    lock = threading.Lock()

    def run(tid: int) -> None:
        precise_sleeps()
        start_wall = time.time_ns()
        start = time.perf_counter_ns()
        i = 0
        futures = []
        while i < count:
            due = min(count, int((time.perf_counter_ns() - start) / interval_ns) + 1)
            while i < due:
                intended = start_wall + int(i * interval_ns)
                ev = NewEvent(
                    f"bench-{tag}-{tid % 8}",
                    "message",
                    {"author": f"user{i % 50}", "text": TEXT, "n": i},
                    key=f"{tag}:{tid}:{i}",
                    source_time_ns=intended,
                    read_ns=intended,
                )
                futures.append(log.submit_threadsafe([ev]))
                i += 1
            # To the next event's time, but at least a tick: a wake-up per event cost more CPU
            # than the append (docs/performance.md#producer-ticks).
            due_in = (start + i * interval_ns - time.perf_counter_ns()) / 1e9
            time.sleep(max(TICK_S, due_in))
            if len(futures) >= 2 * SETTLE_SLICE:
                # The oldest appends' outcomes (an error raises here), a slice at a time: ten
                # thousand at once held the GIL, and with it the writer, for 15-50 ms.
                for f in futures[:SETTLE_SLICE]:
                    f.result()
                del futures[:SETTLE_SLICE]
        for f in futures:
            f.result()
        with lock:
            done[0] += i

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return done[0]


async def produce_via(url: str, rate: float, seconds: float, tag: str) -> tuple[int, float]:
    """Open loop over HTTP: every tick, the events that fell due go as one NDJSON request
    (keyed, so a retry would be a duplicate), without waiting for the answers before the next;
    returns the events the server acknowledged and the seconds from the first send to the last
    answer."""
    import aiohttp
    import orjson

    token = os.environ.get("EVLOG_SERVE_TOKEN", "")
    if url.startswith("unix:"):
        connector: aiohttp.BaseConnector = aiohttp.UnixConnector(path=url.removeprefix("unix:"))
        base = "http://evlog"
    else:
        connector, base = aiohttp.TCPConnector(limit=64), url.rstrip("/")
    endpoint = f"{base}/v1/events?key_field=key&type=message&stream=bench-{tag}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    count = int(rate * seconds)
    interval_ns = 1e9 / rate
    acked = 0
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(body: bytes) -> None:
            nonlocal acked
            async with session.post(endpoint, data=body, headers=headers) as r:
                if r.status == 200:
                    acked += (await r.json())["appended"]

        start_wall, start = time.time_ns(), time.perf_counter_ns()
        pending: list[asyncio.Task[None]] = []
        i = 0
        while i < count:
            due = min(count, int((time.perf_counter_ns() - start) / interval_ns) + 1)
            lines = []
            while i < due:
                intended = start_wall + int(i * interval_ns)
                lines.append(orjson.dumps(
                    {"key": f"{tag}:{i}", "author": f"user{i % 50}", "text": TEXT, "n": i,
                     "intended_ns": intended}
                ))  # fmt: skip
                i += 1
            if lines:
                pending.append(asyncio.create_task(send(b"\n".join(lines))))
            due_in = (start + i * interval_ns - time.perf_counter_ns()) / 1e9
            await asyncio.sleep(max(TICK_S, due_in))
        await asyncio.gather(*pending)
        took = (time.perf_counter_ns() - start) / 1e9
    return acked, took


async def main_async(args: argparse.Namespace) -> None:
    if args.via:
        n, dt = await produce_via(args.via, args.rate, args.seconds, args.tag)
    else:
        async with await EventLog.open(args.db) as log:
            t0 = time.perf_counter()
            n = await asyncio.to_thread(
                produce, log, args.rate, args.seconds, args.threads, args.tag
            )
            dt = time.perf_counter() - t0
    print(
        f"produced {n} events in {dt:.2f} s ({n / dt:.0f}/s); cpu {time.process_time():.4f} s",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("db")
    p.add_argument("rate", type=float)
    p.add_argument("seconds", type=float)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tag", default="p")
    p.add_argument("--via", default=None, help="evlog serve's URL (http://..., unix:/path)")
    args = p.parse_args()
    # What is loaded by now lives as long as the process: out of the collector's way, so its
    # full passes (which hold the GIL the log's writer needs) walk only what producing makes.
    gc.freeze()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
