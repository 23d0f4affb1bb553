"""Running evlog and the helper scripts in tests/procs as real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCS = Path(__file__).resolve().parent / "procs"
SHARED_DATA = ROOT.parent / "shared" / "data"


def proc_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("EVLOG_DB", None)
    env.pop("EVLOG_DUCKDB", None)
    return env


def helper(name: str, *args: str) -> list[str]:
    return [sys.executable, str(PROCS / name), *map(str, args)]


def evlog(
    *args: str | Path, cwd: Path | None = None, timeout: float = 120, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evlog", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=proc_env(),
        timeout=timeout,
        input=input,
    )
