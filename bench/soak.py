"""bench/soak: the watch torture (bench/torture.py) for minutes: `evlog watch` over a directory
while a scripted writer appends, makes and renames files, rotates logs in every logrotate style,
commits, branches and resets in a repository, and the watcher is killed with SIGKILL at random
moments. Prints what was done, and ids lost or duplicated (both must be 0), per run.

    python -m bench.soak                  # 3 runs of 10 minutes, other seeds
    python -m bench.soak --seconds 60     # shorter
    python -m bench.soak --quick          # CI: one run of 10 s
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from .torture import Torture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.runs = 10.0, 1
    failed = 0
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="evlog-soak-") as tmp:
            started = time.monotonic()
            report = Torture(Path(tmp) / "t", args.seconds, seed=args.seed + run).run()
            took = time.monotonic() - started
        for line in report.lines_out():
            print(f"run {run + 1}: {line}")
        print(f"run {run + 1}: {'ok' if report.ok else 'FAILED'} in {took:.0f} s", flush=True)
        failed += not report.ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
