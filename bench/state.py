"""bench/state: state per key, two ways, on the same events in a file DuckDB: append-only change
rows with a latest-per-key view (how evlog's projections keep state, docs/projections.md) beside
an upsert per batch into a table with a primary key (the baseline). Per-batch commit p50/p99/max
(each batch its own transaction, as the live path commits), then the time to read every key's
current state and one key's.

    python -m bench.state            # 10,000 keys, 300,000 changes in batches of 100
    python -m bench.state --quick    # CI: seconds
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa

from .stats import percentile


def batches(n: int, keys: int, size: int) -> list[pa.Table]:
    rnd = random.Random(7)
    out = []
    for start in range(0, n, size):
        seqs = list(range(start + 1, min(n, start + size) + 1))
        out.append(
            pa.table(
                {
                    "seq": pa.array(seqs, pa.int64()),
                    "k": pa.array([f"k{rnd.randrange(keys)}" for _ in seqs]),
                    "status": pa.array([rnd.choice(("new", "paid", "sent")) for _ in seqs]),
                }
            )
        )
    return out


def run(path: Path, setup: list[str], write: str, data: list[pa.Table]) -> list[float]:
    con = duckdb.connect(str(path))
    for ddl in setup:
        con.execute(ddl)
    took = []
    for b in data:
        con.register("b", b)
        t0 = time.perf_counter()
        con.execute("BEGIN")
        con.execute(write)
        con.execute("COMMIT")
        took.append(time.perf_counter() - t0)
    con.close()
    return took


def timed(path: Path, sql: str, repeat: int = 5) -> float:
    con = duckdb.connect(str(path))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        con.execute(sql).fetchall()
        best = min(best, time.perf_counter() - t0)
    con.close()
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--events", type=int)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=100)
    args = p.parse_args()
    n = args.events or (20_000 if args.quick else 300_000)
    data = batches(n, args.keys, args.batch)
    print(
        f"bench/state  {n:,} changes of {args.keys:,} keys in batches of {args.batch}, file DuckDB"
    )
    with tempfile.TemporaryDirectory(prefix="evlog-state-") as d:
        append, upsert = Path(d) / "append.duckdb", Path(d) / "upsert.duckdb"
        ways: list[tuple[str, Path, list[str], str]] = [
            (
                "append-only rows + arg_max view (evlog)",
                append,
                [
                    "CREATE TABLE changes (seq BIGINT, k VARCHAR, status VARCHAR)",
                    "CREATE VIEW state AS SELECT k, arg_max(status, seq) AS status"
                    " FROM changes GROUP BY k",
                ],
                "INSERT INTO changes SELECT * FROM b",
            ),
            (
                "upsert per batch, PRIMARY KEY (baseline)",
                upsert,
                ["CREATE TABLE state (k VARCHAR PRIMARY KEY, seq BIGINT, status VARCHAR)"],
                # last change per key within the batch, then replace
                "INSERT OR REPLACE INTO state SELECT k, max(seq), arg_max(status, seq)"
                " FROM b GROUP BY k",
            ),
        ]
        results: dict[Path, list[float]] = {}
        for label, path, setup, write in ways:
            took = sorted(run(path, setup, write, data))
            results[path] = took
            print(
                f"  {label}: per batch p50 {percentile(took, 50) * 1e3:.2f} ms"
                f"  p99 {percentile(took, 99) * 1e3:.2f} ms  max {took[-1] * 1e3:.1f} ms"
                f"  total {sum(took):.2f} s"
            )
        queries: dict[str, Callable[[Path], float]] = {
            "every key's state": lambda f: timed(
                f, "SELECT count(*), count(DISTINCT status) FROM state"
            ),
            "one key's state": lambda f: timed(f, "SELECT status FROM state WHERE k = 'k42'"),
        }
        for what, q in queries.items():
            a, u = q(append), q(upsert)
            print(f"  read {what}: view {a * 1e3:.2f} ms, upsert table {u * 1e3:.2f} ms", end="")
            print(f" ({a / u:.1f}x)")
        a99, u99 = percentile(results[append], 99), percentile(results[upsert], 99)
        print(f"  write p99 ratio upsert/append: {u99 / a99:.2f}x")


if __name__ == "__main__":
    main()
