"""A log-linear (HDR-style) latency histogram: exact below 256 ns, then 128 buckets per power of
two, so any percentile is within 0.8% of the true value from nanoseconds to hours, in a few
thousand counters. Used by the latency report (bucketed in SQL) and the live metrics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

SUB_BITS = 7  # 2**7 = 128 sub-buckets per power of two: relative error <= 1/128
SUB = 1 << SUB_BITS


def bucket_of(value_ns: int) -> int:
    """Index of the bucket holding value_ns (negative values, i.e. clock skew, count as 0)."""
    v = max(0, value_ns)
    if v < 2 * SUB:
        return v
    shift = v.bit_length() - SUB_BITS - 1
    return (shift << SUB_BITS) + (v >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """Inclusive [low, high] of the values in bucket `index`."""
    if index < 2 * SUB:
        return index, index
    shift = (index >> SUB_BITS) - 1
    sub = index - (shift << SUB_BITS)
    return sub << shift, ((sub + 1) << shift) - 1


def sql_bucket(v: str) -> str:
    """The same bucketing as a DuckDB SQL expression over the BIGINT expression `v`, so a
    histogram of millions of rows leaves the database as a few thousand (bucket, count) rows."""
    s0 = f"(CAST(floor(log2({v})) AS BIGINT) - {SUB_BITS})"
    fix = (
        f"CASE WHEN ({v} >> {s0}) >= {2 * SUB} THEN 1 WHEN ({v} >> {s0}) < {SUB} THEN -1 ELSE 0 END"
    )
    shift = f"({s0} + {fix})"
    return (
        f"CASE WHEN {v} < {2 * SUB} THEN greatest({v}, 0)"
        f" ELSE ({shift} << {SUB_BITS}) + ({v} >> {shift}) END"
    )


def bucket_percentile(counts: dict[int, int], total: int, q: float) -> float | None:
    """Value (ns) at percentile q (0..100) of bucketed counts: the middle of the bucket holding
    that rank; None when there are none."""
    if not total:
        return None
    rank = max(1, min(total, int(q / 100 * total + 0.9999999)))
    seen = 0
    for b in sorted(counts):
        seen += counts[b]
        if seen >= rank:
            low, high = bucket_bounds(b)
            return (low + high) / 2
    return None


@dataclass(slots=True)
class Histogram:
    counts: dict[int, int] = field(default_factory=dict)
    total: int = 0
    max_ns: int = 0
    sum_ns: int = 0

    def record(self, value_ns: int, count: int = 1) -> None:
        b = bucket_of(value_ns)
        self.counts[b] = self.counts.get(b, 0) + count
        self.total += count
        self.sum_ns += max(0, value_ns) * count
        self.max_ns = max(self.max_ns, value_ns)

    def record_many(self, values_ns: Iterable[int]) -> None:
        for v in values_ns:
            self.record(v)

    def add_bucket(self, index: int, count: int) -> None:
        """Merge a pre-bucketed count (e.g. from a SQL GROUP BY)."""
        self.counts[index] = self.counts.get(index, 0) + count
        self.total += count
        low, high = bucket_bounds(index)
        self.sum_ns += (low + high) // 2 * count
        self.max_ns = max(self.max_ns, high)

    def percentile(self, q: float) -> float:
        """Value (ns) at percentile q (0..100): the middle of the bucket holding that rank."""
        value = bucket_percentile(self.counts, self.total, q)
        if value is None:
            return float("nan") if not self.total else float(self.max_ns)
        return min(value, float(self.max_ns))

    def cumulative(self, bounds_ns: Iterable[int]) -> list[int]:
        """Counts <= each bound (Prometheus `le` buckets), assigning a bucket by its high end."""
        ordered = sorted(self.counts.items())
        out = []
        for bound in bounds_ns:
            out.append(sum(c for b, c in ordered if bucket_bounds(b)[1] <= bound))
        return out
