"""bench/ingest: a generated JSONL file of N events into the log with `evlog ingest`'s code path
(adapter, idempotency keys, checkpoints in the same commits), then into DuckDB; beside the same
file loaded by `sqlite-utils insert --nl` and by raw sqlite3 executemany, in the same run.

    python -m bench.ingest              # 1M events
    python -m bench.ingest --quick      # CI: 20k events
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from evlog.adapters import FieldMap, ingest, make_adapter
from evlog.eventlog import EventLog
from evlog.projector import Projector

from .stats import install_uvloop

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


def generate(path: Path, n: int) -> None:
    with path.open("wb") as f:
        for i in range(n):
            record = {
                "id": f"ev-{i:09d}",
                "ts": 1_700_000_000 + i // 100,
                "stream": f"app-{i % 8}",
                "type": "click" if i % 3 else "view",
                "user": f"user{i % 997}",
                "text": " ".join(WORDS[(i + k) % 10] for k in range(6)),
            }
            f.write(orjson.dumps(record) + b"\n")


def raw_sqlite(path: Path, db: Path) -> float:
    """The floor: parse each line and executemany into a table with a UNIQUE key, one commit."""
    t0 = time.perf_counter()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, key TEXT UNIQUE, payload TEXT)")
    with path.open("rb") as f, con:

        def rows() -> object:
            for line in f:
                yield orjson.loads(line)["id"], line.decode()

        con.executemany("INSERT INTO events (key, payload) VALUES (?, ?)", rows())  # type: ignore[arg-type]
    con.close()
    return time.perf_counter() - t0


def sqlite_utils(path: Path, db: Path) -> float | None:
    exe = shutil.which("sqlite-utils") or str(Path(sys.executable).parent / "sqlite-utils")
    if not Path(exe).exists():
        return None
    t0 = time.perf_counter()
    subprocess.run([exe, "insert", str(db), "events", str(path), "--nl"], check=True)
    return time.perf_counter() - t0


async def evlog_ingest(path: Path, db: Path) -> tuple[float, float, int]:
    fields = FieldMap(stream_field="stream", type_field="type", key_field="id", time_field="ts")
    async with await EventLog.open(db) as log:
        t0 = time.perf_counter()
        stats = await ingest(log, make_adapter(path, fields=fields))
        ingest_s = time.perf_counter() - t0
        again = await ingest(log, make_adapter(path, fields=fields))
        assert again.appended == 0, "re-ingest appended events"
        async with await Projector.open(log, db.with_suffix(".duckdb")) as pj:
            t0 = time.perf_counter()
            await pj.catch_up()
            project_s = time.perf_counter() - t0
    return ingest_s, project_s, stats.appended


async def main_async(n: int, workdir: Path) -> None:
    src = workdir / "events.jsonl"
    generate(src, n)
    mb = src.stat().st_size / 1e6
    print(f"bench/ingest: {n:,} JSONL events ({mb:.0f} MB), loop={install_uvloop()}")
    ingest_s, project_s, appended = await evlog_ingest(src, workdir / "evlog.db")
    assert appended == n, appended
    raw_s = raw_sqlite(src, workdir / "raw.db")
    su_s = sqlite_utils(src, workdir / "su.db")
    rate = n / ingest_s
    print(f"  evlog ingest -> log      {ingest_s:7.2f} s  {rate:10,.0f} events/s")
    print(f"  raw sqlite3 executemany  {raw_s:7.2f} s  {n / raw_s:10,.0f} events/s"
          f"   evlog/raw {rate / (n / raw_s):.2f}x")  # fmt: skip
    if su_s is not None:
        print(f"  sqlite-utils insert --nl {su_s:7.2f} s  {n / su_s:10,.0f} events/s"
              f"   evlog/sqlite-utils {rate / (n / su_s):.2f}x")  # fmt: skip
    print(f"  log -> DuckDB (events, messages, latency, git) {project_s:7.2f} s"
          f"  {n / project_s:10,.0f} events/s")  # fmt: skip
    print(
        f"  file -> queryable in DuckDB: {ingest_s + project_s:.2f} s"
        f" ({n / (ingest_s + project_s):,.0f} events/s); goal into the log >= 200,000/s"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--events", type=int)
    args = p.parse_args()
    n = args.events or (20_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="evlog-bench-ingest-") as d:
        asyncio.run(main_async(n, Path(d)))


if __name__ == "__main__":
    main()
