"""The latency report: percentiles per stage over the `latency` projection, against a budget."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import analytics
from .runtime import UserError

STAGES = ("read_to_commit", "commit_to_projected", "read_to_projected")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)?\s*$")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration_s(text: str, default_unit: str = "ms") -> float:
    m = _DURATION.match(text)
    if not m:
        raise UserError(f"not a duration: {text!r} (e.g. 50ms, 10m, 2h)")
    return float(m.group(1)) * _UNIT_S[m.group(2) or default_unit]


@dataclass(slots=True)
class StageStats:
    stage: str
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    over_budget: float  # share of events over the budget

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def report(
    duckdb_path: Path, *, since_s: float | None, last: int | None, budget_ms: float
) -> list[StageStats]:
    where = []
    if since_s is not None:
        where.append(f"committed_at >= now()::TIMESTAMP - INTERVAL {since_s} SECOND")
    source = "latency_stages"
    if last is not None:
        source = f"(SELECT * FROM latency_stages ORDER BY seq DESC LIMIT {int(last)})"
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    parts = []
    for stage in STAGES:
        col = f"{stage}_us / 1e3"
        parts.append(
            f"""SELECT '{stage}' AS stage, count(*) AS n,
                quantile_cont({col}, 0.5), quantile_cont({col}, 0.9),
                quantile_cont({col}, 0.99), quantile_cont({col}, 0.999), max({col}),
                coalesce(avg(CASE WHEN {col} > {budget_ms} THEN 1.0 ELSE 0.0 END), 0)
            FROM {source} {clause}"""
        )
    result = analytics.query(duckdb_path, " UNION ALL ".join(parts))
    order = {s: i for i, s in enumerate(STAGES)}
    stats = [
        StageStats(r[0], int(r[1]), *(float(x) if x is not None else 0.0 for x in r[2:]))
        for r in result.rows
    ]
    return sorted(stats, key=lambda s: order[s.stage])
