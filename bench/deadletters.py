"""bench/deadletters: what bad input costs. `evlog ingest` of a file of short bad JSON lines
(every one a dead letter: the worst case, where a letter's own cost is all there is), then
`evlog deadletters retry` of them all; beside it in the same run, the baseline: the same
letters stored by raw sqlite3 one row each (source, position, reason, raw record). Prints the
log file's size against the input and the baseline, times, and peak RSS of each command.

    python -m bench.deadletters            # 1,000,000 lines (17 MB), 3 runs
    python -m bench.deadletters --quick    # CI: 20,000 lines, 1 run
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .stats import run_in_tempdir

TARGET_RATIO = 2.0  # events.db at most twice the input (issue 30)
TARGET_RETRY_RSS_MB = 200.0
REASON = "malformed JSON: unexpected character, expected a string key: line 1 column 2 (char 1)"


def write_input(path: Path, n: int) -> None:
    with path.open("w") as f:
        for i in range(n):
            f.write(f"{{bad json {i:06d}\n")
    old = time.time() - 3600  # finished: its last line is taken at once
    os.utime(path, (old, old))


# `evlog ARGS` in a process that writes its own peak RSS (KB) to .rss when it ends: VmHWM,
# which starts anew at exec (ru_maxrss would keep the forking parent's, the baseline's rows).
_MEASURED = (
    "import runpy, sys\n"
    "sys.argv = ['evlog', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('evlog', run_name='__main__')\n"
    "finally:\n"
    "    peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
    "    with open('.rss', 'w') as f:\n"
    "        f.write(peak[0])\n"
)


def timed(args: list[str], cwd: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of `evlog ARGS` run in `cwd`."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", _MEASURED, *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    took = time.perf_counter() - started
    return took, int((cwd / ".rss").read_text()) / 1024


def baseline(src: Path, db: Path) -> float:
    """Seconds to store every line as a row of its own with raw sqlite3 (WAL, one commit)."""
    started = time.perf_counter()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE dead (id INTEGER PRIMARY KEY, source TEXT, position TEXT, error TEXT,"
        " raw BLOB)"
    )
    source = f"file:{src}"
    with src.open("rb") as f:
        rows = [(source, f"{src}:{i + 1}", REASON, line.rstrip(b"\n")) for i, line in enumerate(f)]
    with con:
        con.executemany("INSERT INTO dead (source, position, error, raw) VALUES (?,?,?,?)", rows)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return time.perf_counter() - started


async def run(workdir: Path, n: int, runs: int) -> None:
    src = workdir / "bad.jsonl"
    write_input(src, n)
    size_in = src.stat().st_size
    print(f"bench/deadletters  {n:,} bad JSON lines ({size_in / 1e6:.1f} MB), {runs} run(s)")
    ratios, ingests, retries, retry_rss = [], [], [], []
    for i in range(runs):
        cwd = workdir / f"run{i}"
        cwd.mkdir()
        (cwd / "bad.jsonl").symlink_to(src)
        ingest_args = ["ingest", "bad.jsonl", "--max-dead-letter-ratio", "1"]
        t_ingest, ingest_rss = timed(ingest_args, cwd)
        t_retry, rss = timed(["deadletters", "retry"], cwd)
        timed(["status"], cwd)  # closes the log: the WAL is folded into the file
        size = (cwd / ".evlog" / "events.db").stat().st_size
        t_base = baseline(src, cwd / "raw.db")
        size_base = (cwd / "raw.db").stat().st_size
        ratios.append(size / size_in)
        ingests.append(t_ingest)
        retries.append(t_retry)
        retry_rss.append(rss)
        print(
            f"  run {i + 1}: events.db {size / 1e6:.1f} MB ({size / size_in:.2f}x the input),"
            f" ingest {t_ingest:.2f} s ({ingest_rss:.0f} MB RSS), retry {t_retry:.2f} s"
            f" ({rss:.0f} MB RSS)"
            f" | raw sqlite3, a row per letter: {size_base / 1e6:.1f} MB"
            f" ({size_base / size_in:.2f}x), {t_base:.2f} s | evlog/raw size"
            f" {size / size_base:.2f}x, time {t_ingest / t_base:.1f}x"
        )
    ratio, peak = statistics.median(ratios), max(retry_rss)
    print(
        f"  ingest {min(ingests):.2f}-{max(ingests):.2f} s, retry {min(retries):.2f}-"
        f"{max(retries):.2f} s; median size {ratio:.2f}x the input: target <= {TARGET_RATIO:g}x"
        f" {'met' if ratio <= TARGET_RATIO else 'NOT met'}; retry peak RSS {peak:.0f} MB:"
        f" target <= {TARGET_RETRY_RSS_MB:g} MB"
        f" {'met' if peak <= TARGET_RETRY_RSS_MB else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for CI")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    n, runs = (20_000, 1) if args.quick else (args.lines, args.runs)
    run_in_tempdir("evlog-bench-deadletters-", lambda d: run(d, n, runs))


if __name__ == "__main__":
    main()
