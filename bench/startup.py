"""bench/startup: how long `evlog query` takes to answer, start to exit, beside the floor in the
same run: `python -c` importing duckdb, opening the same analytics file read-only and running
the same query. Each side runs alternately as a process of its own, on a small log (the
bundled sample), with no follower; also `evlog status` and `evlog --help`. Target (issue 34):
`evlog query` within 1.5x of the floor.

    python -m bench.startup              # 30 runs each
    python -m bench.startup --quick      # CI: 5 runs each
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.stats import percentile

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5
QUERY = "SELECT count(*) FROM events"


def evlog_argv() -> list[str]:
    """The installed `evlog` script beside this Python (as a user runs it), else `-m evlog`."""
    script = Path(sys.executable).parent / "evlog"
    return [str(script)] if script.exists() else [sys.executable, "-m", "evlog"]


def timed(argv: list[str], cwd: Path, source_tree: bool = False) -> float:
    """Seconds from start to exit of one process (its output to a pipe, as a script reads it);
    `source_tree`: with this checkout first on sys.path."""
    env = dict(os.environ)
    # As installed: pip writes every module's bytecode at install time; a run here may not
    # (PYTHONDONTWRITEBYTECODE), and would then compile evlog's modules at every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if source_tree:
        env["PYTHONPATH"] = str(ROOT)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return took


def row(label: str, s: list[float], floor_p50: float | None) -> str:
    s = sorted(s)
    p50, p99 = percentile(s, 50), percentile(s, 99)
    ratio = f"  {p50 / floor_p50:4.2f}x the floor (p50)" if floor_p50 else ""
    p50, p99 = p50 * 1e3, p99 * 1e3
    return f"  {label:<44} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms{ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for CI")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 30)
    with tempfile.TemporaryDirectory(prefix="evlog-startup-") as tmp:
        work = Path(tmp)
        shutil.copy(ROOT / "samples" / "team-chat.jsonl", work / "chat.jsonl")
        evlog = evlog_argv()
        for setup in (["ingest", "chat.jsonl"], ["project"]):
            done = subprocess.run([*evlog, *setup], cwd=work, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"evlog {' '.join(setup)} failed: {done.stderr.strip()}")
        duck = work / ".evlog" / "events.duckdb"
        floor_code = (
            f"import duckdb; c = duckdb.connect({str(duck)!r}, read_only=True);"
            f" print(c.execute({QUERY!r}).fetchall())"
        )
        # The installed script of a development (editable) install finds evlog through
        # setuptools' import hook; a wheel's install, as users have, imports it off sys.path,
        # as `python -m evlog` from the source tree does.
        as_wheel = [sys.executable, "-m", "evlog"]
        cases = {
            "python -c: import duckdb + the query (floor)": [sys.executable, "-c", floor_code],
            "evlog query": [*as_wheel, "query", QUERY],
            "evlog query (the installed script)": [*evlog, "query", QUERY],
            "evlog status": [*as_wheel, "status"],
            "evlog --help": [*as_wheel, "--help"],
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        for argv in cases.values():
            timed(argv, work, source_tree=True)  # warm the page cache
        for _ in range(runs):
            for label, argv in cases.items():  # alternately: a noisy moment hits every case
                times[label].append(timed(argv, work, source_tree=argv[:2] == as_wheel[:2]))
    print(f"bench/startup  runs={runs}  cores={os.cpu_count()}  start to exit, output to a pipe")
    labels = list(cases)
    floor_p50 = percentile(sorted(times[labels[0]]), 50)
    print(row(labels[0], times[labels[0]], None))
    for label in labels[1:]:
        print(row(label, times[label], floor_p50))
    ratio = percentile(sorted(times["evlog query"]), 50) / floor_p50
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"  evlog query / floor p50 {ratio:.2f}x; target <= {TARGET_RATIO}x: {verdict}")


if __name__ == "__main__":
    main()
