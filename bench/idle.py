"""bench/idle: what a long-running evlog costs while nothing happens: CPU share of a core used by
an idle `evlog project --follow`, `evlog watch` of one file, and `evlog watch` of a directory of
many unchanged files; beside, in the same run, `tail -F` following one file (coreutils, inotify)
and a Python process that only sleeps in its event loop. Target: under 1% of a core.

    python -m bench.idle                 # 20 s per case, 10,000 files
    python -m bench.idle --quick         # CI: 3 s per case, 500 files
"""

from __future__ import annotations

import argparse
import glob
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SHARE = 0.01


def cpu_ns(pid: int) -> int:
    """CPU time used so far by every thread of `pid`, in ns (from the scheduler's own count)."""
    total = 0
    for stat in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(stat) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that just ended
    return total


def idle_share(argv: list[str], cwd: Path, settle_s: float, seconds: float) -> float:
    """Start `argv`, wait `settle_s` for its start-up work, then its CPU share over `seconds`."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(settle_s)
        # start-up work (a first scan of many files) is over once a second costs little
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            c = cpu_ns(proc.pid)
            time.sleep(1.0)
            if cpu_ns(proc.pid) - c < 0.05e9:
                break
        if proc.poll() is not None:
            raise RuntimeError(f"{argv} exited early ({proc.returncode})")
        t0, c0 = time.monotonic(), cpu_ns(proc.pid)
        time.sleep(seconds)
        t1, c1 = time.monotonic(), cpu_ns(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return (c1 - c0) / ((t1 - t0) * 1e9)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seconds", type=float)
    p.add_argument("--files", type=int)
    args = p.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 20.0)
    n_files = args.files or (500 if args.quick else 10_000)
    settle = 2.0 if args.quick else 5.0
    evlog = [sys.executable, "-m", "evlog"]
    with tempfile.TemporaryDirectory(prefix="evlog-idle-") as tmp:
        work = Path(tmp)
        one, many = work / "one", work / "many"
        one.mkdir()
        many.mkdir()
        (one / "app.jsonl").write_text('{"n": 1}\n')
        for i in range(n_files):
            (many / f"f{i:05d}.jsonl").write_text(f'{{"n": {i}}}\n')
        subprocess.run([*evlog, "ingest", str(one / "app.jsonl")], cwd=work, check=True,
                       capture_output=True)  # fmt: skip
        files = sorted(str(f) for f in many.iterdir())
        subprocess.run([*evlog, "--db", "wn.db", "ingest", *files], cwd=work, check=True,
                       capture_output=True)  # fmt: skip
        cases = {
            "baseline: python asyncio sleeping": [
                sys.executable, "-c", "import asyncio; asyncio.run(asyncio.sleep(3600))",
            ],
            "baseline: tail -F one file": ["tail", "-F", str(one / "app.jsonl")],
            "evlog project --follow": [*evlog, "project", "--follow"],
            "evlog watch (one file)": [*evlog, "--db", "w1.db", "watch", str(one)],
            f"evlog watch ({n_files:,} files)": [*evlog, "--db", "wn.db", "watch", str(many)],
        }  # fmt: skip
        print(f"bench/idle  cpus={os.cpu_count()}  seconds={seconds:g}  quick={args.quick}")
        shares = {}
        for name, argv in cases.items():
            shares[name] = idle_share(argv, work, settle, seconds)
            print(f"  {name:40s} {shares[name]:7.2%} of a core")
        floor = shares["baseline: python asyncio sleeping"]
        tail = shares["baseline: tail -F one file"]
        for name, share in shares.items():
            if name.startswith("evlog"):
                met = "met" if share < TARGET_SHARE else "MISSED"
                print(
                    f"  target < {TARGET_SHARE:.0%}: {name}: {share:.2%} {met}"
                    f" (+{(share - floor) * 100:.2f} points over the sleeping floor,"
                    f" tail -F {tail:.2%})"
                )


if __name__ == "__main__":
    main()
