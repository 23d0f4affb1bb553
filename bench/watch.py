"""bench/watch: a change in a watched directory -> visible in DuckDB, for each kind of change
`evlog watch` meets, measured from the time of the change (carried in the line, or recorded by
the writer), the writer in a process of its own:

- append: lines appended to a file already read;
- new file: a new file every LINES_PER_FILE(rate) lines (at 10 lines/s every line is a file of
  its own; at 1,000 lines/s, 100 new files a second), the lines between appended to it;
- rotation: the same, each new file made in place of the one renamed away (logrotate's
  `create`: 10 rotations a second at 10 lines/s, 100 at 1,000);
- commit: an empty commit in a watched repository (only its refs move), -> in `git_commits`.

And the ceiling of new files: how many files of one line a second the watcher takes in, from a
burst of them made at once.

Beside each, in the same run, the floor: the same changes read by a plain inotify reader the
moment the kernel says what changed (what `tail -F` does), and for commits, a plain inotify
watch on the refs that asks git for the new commit (`git log -1`: git's own time to list it).
For appends, also how well evlog's own written stamp (the `written_to_*` stages of
`evlog latency`) tells the write time: its error against the time the line carries.

    python -m bench.watch                # every kind, 10 and 1,000 lines/s (commits 10/s), 20 s
    python -m bench.watch --quick        # CI: seconds
    python -m bench.watch --kinds append,commit
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

from evlog.eventlog.columns import PAYLOAD, TYPE, WRITTEN
from evlog.eventlog.store import open_log
from evlog.live import watch
from evlog.projector import EventBatch, Projector
from evlog.runtime import settle_in
from evlog.system.changes import SUPPORTED, DirectoryWrites

from .stats import install_uvloop, percentile, run_in_tempdir

TARGET_P99_MS = {"append": 20.0, "newfile": 20.0, "rotation": 20.0, "commit": 100.0}
GOAL_OVER_FLOOR_MS = 20.0  # commits: git's own time + this
KINDS = ("append", "newfile", "rotation", "commit")
COMMIT_RATE = 10.0
CEILING_FILES = 3000


def lines_per_file(rate: float) -> int:
    """How many lines go to each new file: at most 100 new files a second."""
    return max(1, int(rate // 100))


GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.org",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.org",
    "GIT_CONFIG_NOSYSTEM": "1",
}


# -- the writer (a process of its own) ----------------------------------------------------------


def _line(i: int) -> bytes:
    return orjson.dumps({"author": f"w{i % 7}", "text": f"line {i}", "written_ns": time.time_ns()})


def write(kind: str, where: Path, rate: float, seconds: float) -> None:
    """Make `rate * seconds` changes of `kind` under `where` on a fixed schedule (open loop)."""
    n = int(rate * seconds)
    start = time.perf_counter()
    truth = (where / "truth.txt").open("a") if kind == "commit" else None
    env = {**os.environ, **GIT_ENV}
    per_file = lines_per_file(rate)
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        if kind == "append":
            _append(where / "chat.jsonl", _line(i))
        elif kind == "newfile":
            _append(where / f"n{i // per_file}.jsonl", _line(i))
        elif kind == "rotation":
            if i % per_file == 0:
                os.rename(where / "app.jsonl", where / f"app.{i}.jsonl")
            _append(where / "app.jsonl", _line(i))
        else:
            subprocess.run(
                ["git", "-C", str(where / "repo"), "commit", "-q", "--allow-empty", "-m", str(i)],
                env=env, check=True,
            )  # fmt: skip
            done = time.time_ns()
            sha = (where / "repo" / ".git" / "refs" / "heads" / "main").read_text().strip()
            assert truth is not None
            truth.write(f"{sha} {done}\n")
    if truth is not None:
        truth.close()


def _append(path: Path, line: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, line + b"\n")
    os.close(fd)


def burst(where: Path, n: int) -> None:
    """The ceiling's writer: `n` files of one line each, made as fast as it can."""
    for i in range(n):
        _append(where / f"b{i}.jsonl", _line(i))


async def run_writer(kind: str, where: Path, rate: float, seconds: float) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.watch", "--write", kind, "--where", str(where),
        "--rate", str(rate), "--seconds", str(seconds),
    )  # fmt: skip
    if await proc.wait() != 0:
        raise SystemExit("the writer process failed")


def prepare(kind: str, where: Path) -> None:
    where.mkdir()
    if kind == "append":
        (where / "chat.jsonl").touch()
    elif kind == "rotation":
        (where / "app.jsonl").touch()
    elif kind == "commit":
        repo = where / "repo"
        env = {**os.environ, **GIT_ENV}
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], env=env, check=True)
        subprocess.run(
            ["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "first"],
            env=env, check=True,
        )  # fmt: skip


def truths(where: Path) -> dict[str, int]:
    """sha -> when the commit was done, as the writer recorded it."""
    out = {}
    for line in (where / "truth.txt").read_text().splitlines():
        sha, ns = line.split()
        out[sha] = int(ns)
    return out


def summary(lat_ns: list[int], expected: int) -> dict[str, float]:
    lat_ns.sort()
    return {
        "n": len(lat_ns),
        "lost": expected - len(lat_ns),
        "p50": percentile(lat_ns, 50) / 1e6,
        "p99": percentile(lat_ns, 99) / 1e6,
        "max": lat_ns[-1] / 1e6 if lat_ns else float("nan"),
    }


# -- the floor: a plain inotify reader ---------------------------------------------------------


async def floor(kind: str, where: Path, rate: float, seconds: float) -> dict[str, float]:
    prepare(kind, where)
    expected = int(rate * seconds)
    lat: list[int] = []
    seen_commits: dict[str, int] = {}
    offsets: dict[Path, int] = {}
    pending: dict[Path, bytes] = {}
    loop = asyncio.get_running_loop()
    asking = asyncio.Lock()
    asks: set[asyncio.Task[None]] = set()

    inodes: dict[Path, int] = {}

    def read(path: Path) -> None:
        try:
            with open(path, "rb") as f:
                ino = os.fstat(f.fileno()).st_ino
                if inodes.setdefault(path, ino) != ino:  # a new file in its place: from 0
                    inodes[path], offsets[path], pending[path] = ino, 0, b""
                f.seek(offsets.get(path, 0))
                data = f.read()
        except OSError:
            return
        now = time.time_ns()
        offsets[path] = offsets.get(path, 0) + len(data)
        *lines, pending[path] = (pending.get(path, b"") + data).split(b"\n")
        lat.extend(now - orjson.loads(line)["written_ns"] for line in lines if line)

    async def ask_git() -> None:
        async with asking:
            done = await asyncio.to_thread(
                subprocess.run,
                ["git", "-C", str(where / "repo"), "log", "-1", "--format=%H"],
                capture_output=True,
                text=True,
            )
            sha = done.stdout.strip()
            seen_commits.setdefault(sha, time.time_ns())

    def on_write(paths: set[Path]) -> None:
        if kind == "commit":
            task = loop.create_task(ask_git())
            asks.add(task)
            task.add_done_callback(asks.discard)
            return
        for path in paths:
            if path.suffix == ".jsonl" and (kind != "rotation" or path.name == "app.jsonl"):
                read(path)

    writes = DirectoryWrites.open(loop, on_write)
    if writes is None:
        return summary([], expected)
    writes.add(where / "repo" / ".git" / "refs" / "heads" if kind == "commit" else where)
    try:
        await run_writer(kind, where, rate, seconds)
        await asyncio.sleep(0.3)
    finally:
        writes.close()
    if kind == "commit":
        lat = [seen_commits[sha] - t for sha, t in truths(where).items() if sha in seen_commits]
    return summary(lat, expected)


# -- evlog watch --------------------------------------------------------------------------------


async def evlog_watch(
    kind: str, where: Path, rate: float, seconds: float
) -> tuple[dict[str, float], dict[str, float], list[int]]:
    """`evlog watch` of a directory (watcher, log and projector in one process, as the CLI
    runs them): the change -> the DuckDB commit that made it visible; for lines, the same as
    evlog's own stamps tell it (written_to_visible), and its written stamp's error (ns)."""
    prepare(kind, where)
    expected = int(rate * seconds)
    lat: list[int] = []
    told: list[int] = []  # written_to_visible from evlog's stamps
    errors: list[int] = []  # evlog's written stamp minus the true write time
    commits: dict[str, int] = {}  # sha -> when visible
    all_seen = asyncio.Event()

    def record(batch: EventBatch) -> None:
        for r in batch.rows:
            if r[TYPE] == "git.commit":
                commits[orjson.loads(r[PAYLOAD])["sha"]] = batch.visible_ns
                continue
            truth = orjson.loads(r[PAYLOAD]).get("written_ns")
            if truth is None:
                continue
            lat.append(batch.visible_ns - truth)
            if r[WRITTEN] is not None:
                told.append(batch.projected_ns - r[WRITTEN])
                errors.append(r[WRITTEN] - truth)
        if len(lat) >= expected or len(commits) > expected:
            all_seen.set()

    db = where.parent / f"{where.name}.db"
    async with (
        await open_log(str(db)) as log,
        await Projector.open(log, db.with_suffix(".duckdb")) as pj,
    ):
        watcher = watch.Watcher(log, [where], {})
        stop = asyncio.Event()
        tasks = [asyncio.create_task(pj.follow(record)), asyncio.create_task(watcher.run(stop))]
        await asyncio.sleep(1.0)  # watching, first scan done, before the first change
        settle_in()  # as `evlog watch` does once started (evlog/runtime.py)
        await run_writer(kind, where, rate, seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_seen.wait(), 10)
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if kind == "commit":
        lat = [commits[sha] - t for sha, t in truths(where).items() if sha in commits]
    return summary(lat, expected), summary(told, expected), errors


async def ceiling(where: Path, n: int) -> tuple[float, float]:
    """(new files a second the watcher takes in, from a burst of `n` made at once; the files a
    second the burst was made at)."""
    where.mkdir()
    db = where.parent / f"{where.name}.db"
    async with await open_log(str(db)) as log:
        watcher = watch.Watcher(log, [where], {})
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        await asyncio.sleep(1.0)
        started = time.perf_counter()
        await asyncio.to_thread(burst, where, n)
        made = time.perf_counter() - started
        while time.perf_counter() - started < 120:  # the log is polled as a reader would
            if await log.head() >= n:
                break
            await asyncio.sleep(0.01)
        took = time.perf_counter() - started
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return n / took, n / made


# -- the report ---------------------------------------------------------------------------------


def _row(rate: float, unit: str, label: str, s: dict[str, float]) -> str:
    return (
        f"{rate:>6,.0f} {unit:8s} {label:26s} p50 {s['p50']:7.2f} ms  p99 {s['p99']:7.2f} ms"
        f"  max {s['max']:7.1f} ms  ({s['n']:,} seen, {s['lost']:,} not seen)"
    )


async def main_async(args: argparse.Namespace, workdir: Path) -> None:
    seconds = 2.0 if args.quick else args.seconds
    kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds else list(KINDS)
    print(
        f"bench/watch  quick={args.quick}  {seconds:.0f} s per rate  inotify: {SUPPORTED}"
        "  a change -> visible in DuckDB"
    )
    for kind in kinds:
        if kind == "newfile":
            n = 300 if args.quick else CEILING_FILES
            took_in, made_at = await ceiling(workdir / "ceiling", n)
            print(
                f"-- new files, ceiling: {n:,} one-line files made at once ({made_at:,.0f}/s):"
                f" taken in at {took_in:,.0f} files/s"
            )
        rates = [COMMIT_RATE] if kind == "commit" else [10.0, 1000.0]
        unit = "commits/s" if kind == "commit" else "lines/s"
        per_file = " (lines per file: 1 at 10/s, 10 at 1,000/s)"
        shape = "" if kind in ("append", "commit") else per_file
        print(f"-- {kind}{shape}")
        for rate in rates:
            tag = f"{kind}-{int(rate)}"
            measured, told, errors = await evlog_watch(kind, workdir / tag, rate, seconds)
            base = await floor(kind, workdir / f"floor-{tag}", rate, seconds)
            floor_label = "git log -1 on a refs watch" if kind == "commit" else "inotify reader"
            print(_row(rate, unit, f"{floor_label} (floor)", base))
            print(_row(rate, unit, "evlog watch", measured))
            if kind == "append":
                print(_row(rate, unit, "evlog's written_to_visible", told))
                if errors:
                    errors.sort()
                    print(
                        f"  evlog's written stamp - the write: p50"
                        f" {percentile(errors, 50) / 1e6:+.3f} ms  min {errors[0] / 1e6:+.3f}"
                        f"  max {errors[-1] / 1e6:+.3f} ms (negative: a later line of a batch,"
                        " or a coarse file clock)"
                    )
            ratio = measured["p99"] / max(base["p99"], 1e-9)
            target = TARGET_P99_MS[kind]
            met = "met" if measured["p99"] <= target else "NOT met"
            line = f"  evlog/floor p99 {ratio:.1f}x; target p99 <= {target:.0f} ms: {met}"
            if kind == "commit":
                goal = base["p99"] + GOAL_OVER_FLOOR_MS
                line += f"; goal floor + {GOAL_OVER_FLOOR_MS:.0f} ms = {goal:.1f} ms:"
                line += " met" if measured["p99"] <= goal else " NOT met"
            print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for CI")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kinds", help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--write", help=argparse.SUPPRESS)  # the writer process: its kind
    parser.add_argument("--where", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=10.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        write(args.write, Path(args.where), args.rate, args.seconds)
        return
    install_uvloop()
    run_in_tempdir("evlog-watch-", lambda workdir: main_async(args, workdir))


if __name__ == "__main__":
    main()
