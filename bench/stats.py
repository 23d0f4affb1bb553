"""Percentiles and the one-line figure format every benchmark prints; the helpers for the
benchmarks' setting (event loop, CPU steal, precise producer sleeps) live with the load test in
evlog/loadtest/machine.py and are re-exported here."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from evlog.loadtest.machine import cpu_steal_ms, install_uvloop, precise_sleeps, proc_stat_cpu

__all__ = [
    "cpu_steal_ms",
    "fmt_latency",
    "install_uvloop",
    "latency_summary_us",
    "percentile",
    "precise_sleeps",
    "proc_stat_cpu",
    "run_in_tempdir",
]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already-sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def latency_summary_us(samples_ns: Sequence[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    return {
        "n": len(s),
        "p50_us": percentile(s, 50) / 1e3,
        "p99_us": percentile(s, 99) / 1e3,
        "p999_us": percentile(s, 99.9) / 1e3,
        "max_us": (s[-1] / 1e3) if s else float("nan"),
    }


def fmt_latency(summary: dict[str, float]) -> str:
    return (
        f"p50 {summary['p50_us']:8.1f} µs  p99 {summary['p99_us']:8.1f} µs  "
        f"p999 {summary['p999_us']:8.1f} µs  max {summary['max_us']:9.1f} µs"
    )


def run_in_tempdir(prefix: str, main: Callable[[Path], Coroutine[Any, Any, None]]) -> None:
    """`asyncio.run(main(a fresh temporary directory))`, removed afterwards; Ctrl-C ends it
    quietly (a benchmark stopped by hand is not an error)."""
    with (
        tempfile.TemporaryDirectory(prefix=prefix) as tmp,
        contextlib.suppress(KeyboardInterrupt),
    ):
        asyncio.run(main(Path(tmp)))
