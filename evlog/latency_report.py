"""The latency report: per stage (and per stream or type), percentiles from HDR histograms built
in DuckDB over the `latency` projection, the share over a budget, and p99 over time. Stages are
defined once, in docs/latency.md; events projected live are reported apart from the rest."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evlog.live.histogram import Histogram, sql_bucket

from .runtime import UsageError

STAGES = (
    "written_to_read", "read_to_commit", "commit_to_visible", "read_to_visible",
    "written_to_visible",
)  # fmt: skip
STAGE_SQL = {
    "written_to_read": "read_ns - written_ns",
    "read_to_commit": "committed_ns - read_ns",
    "commit_to_visible": "projected_ns - committed_ns",
    "read_to_visible": "projected_ns - read_ns",
    "written_to_visible": "projected_ns - written_ns",
}
# Only events whose source said when they were written (`evlog watch`) have these; they are
# reported when some do.
WRITTEN_STAGES = ("written_to_read", "written_to_visible")
# The whole way, to which the budget applies: from the write where it is known.
BUDGETED = ("read_to_visible", "written_to_visible")
MODES = ("live", "catch-up", "rebuild", "all")
GROUPS = {"stream": "stream", "type": "type"}
QUANTILES = (50, 90, 99, 99.9)
SPARK = "▁▂▃▄▅▆▇█"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h|d)?\s*$")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_UNIT_S["d"] = 86400.0


def parse_duration_s(text: str, default_unit: str = "ms") -> float:
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"not a duration: {text!r} (e.g. 50ms, 10m, 2h)")
    return float(m.group(1)) * _UNIT_S[m.group(2) or default_unit]


@dataclass(slots=True)
class StageStats:
    stage: str
    group: str | None
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    over_budget: float  # share of events over the budget (exact, not from the histogram)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(slots=True)
class Report:
    stages: list[StageStats]
    p99_over_time: list[tuple[int, float]]  # (window start, epoch ns; p99 read->visible ms)
    window_s: float
    mode: str = "live"
    by_mode: dict[str, int] = field(default_factory=dict)  # events in the window, per mode

    def overall(self, stage: str) -> StageStats:
        """The stage over every group (with no events if none had it)."""
        return next(
            (s for s in self.stages if s.stage == stage and s.group is None),
            StageStats(stage, None, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        )

    def over_budget(self, budget_ms: float) -> list[StageStats]:
        """The budgeted stages (BUDGETED) with events whose p99 is over `budget_ms`."""
        return [s for st in BUDGETED if (s := self.overall(st)).count and s.p99_ms > budget_ms]

    def to_json(self, budget_ms: float) -> dict[str, Any]:
        """The report as `evlog latency --json` writes it, judged against `budget_ms`."""
        return {
            "budget_ms": budget_ms,
            "over_budget": bool(self.over_budget(budget_ms)),
            "mode": self.mode,
            "events_by_mode": self.by_mode,
            "stages": [x.to_json() for x in self.stages],
            "p99_over_time": [{"from_ns": t, "p99_ms": round(p, 3)} for t, p in self.p99_over_time],
        }

    def verdicts(self, budget_ms: float) -> list[str]:
        """One line per budgeted stage with events: its p99, within or over the budget."""
        out = []
        for stage in BUDGETED:
            if (whole := self.overall(stage)).count:
                verdict = "OVER" if whole.p99_ms > budget_ms else "within"
                out.append(
                    f"p99 {stage} {whole.p99_ms:.2f} ms is {verdict} the {budget_ms:g} ms budget"
                )
        return out


def _source(since_s: float | None, last: int | None, mode: str = "all") -> str:
    where = ["TRUE"]
    if since_s is not None:
        where.append(f"committed_ns >= {time.time_ns() - int(since_s * 1e9)}")
    if mode != "all":
        where.append(f"mode = '{mode}'")
    sql = f"SELECT * FROM latency WHERE {' AND '.join(where)}"
    if last is not None:
        return f"({sql} ORDER BY seq DESC LIMIT {int(last)})"
    return f"({sql})"


def report(
    duckdb_path: Path,
    *,
    since_s: float | None,
    last: int | None,
    budget_ms: float,
    by: str | None = None,
    mode: str = "live",
    windows: int = 40,
) -> Report:
    if by is not None and by not in GROUPS:
        raise UsageError(f"--by {by!r}: one of {', '.join(GROUPS)}")
    if mode not in MODES:
        raise UsageError(f"--mode {mode!r}: one of {', '.join(MODES)}")
    from . import analytics  # DuckDB, only for the commands that read the report

    counted = analytics.query(
        duckdb_path, f"SELECT mode, count(*) FROM {_source(since_s, last)} GROUP BY mode"
    ).rows
    src = _source(since_s, last, mode)
    budget_ns = int(budget_ms * 1e6)
    group = GROUPS[by] if by else "NULL"
    # A file not yet upgraded to the written stamp (a projector run does it) has no such column.
    columns = analytics.query(duckdb_path, "SELECT * FROM latency LIMIT 0").columns
    values = " UNION ALL ".join(
        f"SELECT '{stage}' AS stage, {group} AS grp, CAST({expr} AS BIGINT) AS v FROM src"
        + (" WHERE written_ns IS NOT NULL" if stage in WRITTEN_STAGES else "")
        for stage, expr in STAGE_SQL.items()
        if stage not in WRITTEN_STAGES or "written_ns" in columns
    )
    rows = analytics.query(
        duckdb_path,
        f"""WITH src AS (SELECT * FROM {src}), v AS ({values})
        SELECT stage, grp, {sql_bucket("v")} AS bucket, count(*), max(v), count_if(v > {budget_ns})
        FROM v GROUP BY ALL""",
        max_rows=None,
    ).rows
    hists: dict[tuple[str, str | None], Histogram] = {}
    over: dict[tuple[str, str | None], int] = {}
    maxes: dict[tuple[str, str | None], int] = {}
    for stage, grp, bucket, n, max_v, n_over in rows:
        targets = [(stage, None)] + ([(stage, str(grp))] if by else [])
        for key in targets:
            h = hists.setdefault(key, Histogram())
            h.add_bucket(int(bucket), int(n))
            maxes[key] = max(maxes.get(key, 0), int(max_v))
            over[key] = over.get(key, 0) + int(n_over)
    stats = []
    # every stage, even with no rows (but those of the written stamp only where some have it)
    keys = {(stage, None) for stage in STAGES if stage not in WRITTEN_STAGES} | hists.keys()
    for stage, grp in sorted(
        keys, key=lambda k: (k[1] is not None, k[1] or "", STAGES.index(k[0]))
    ):
        h = hists.get((stage, grp), Histogram())
        h.max_ns = maxes.get((stage, grp), 0)  # exact, not a bucket's edge
        p50, p90, p99, p999 = (h.percentile(q) / 1e6 if h.total else 0.0 for q in QUANTILES)
        stats.append(
            StageStats(
                stage, grp, h.total, p50, p90, p99, p999, h.max_ns / 1e6 if h.total else 0.0,
                over.get((stage, grp), 0) / h.total if h.total else 0.0,
            )
        )  # fmt: skip
    over_time, window_s = _p99_over_time(duckdb_path, src, windows)
    return Report(stats, over_time, window_s, mode, {str(m): int(n) for m, n in counted})


def _p99_over_time(
    duckdb_path: Path, src: str, windows: int
) -> tuple[list[tuple[int, float]], float]:
    from . import analytics

    bounds = analytics.query(
        duckdb_path, f"SELECT min(committed_ns), max(committed_ns) FROM {src}"
    ).rows[0]
    if bounds[0] is None:
        return [], 0.0
    lo, hi = int(bounds[0]), int(bounds[1])
    width = max(1, (hi - lo) // windows + 1)
    rows = analytics.query(
        duckdb_path,
        f"""SELECT (committed_ns - {lo}) // {width} AS w,
                   quantile_disc(projected_ns - read_ns, 0.99) / 1e6
            FROM {src} GROUP BY w ORDER BY w""",
        max_rows=None,
    ).rows
    return [(lo + int(w) * width, float(p)) for w, p in rows], width / 1e9


def sparkline(points: list[tuple[int, float]], budget_ms: float) -> str:
    """p99 per window as bars scaled to the largest (or the budget, if larger)."""
    if not points:
        return ""
    top = max(max(p for _, p in points), budget_ms)
    return "".join(SPARK[min(len(SPARK) - 1, int(p / top * len(SPARK)))] for _, p in points)
