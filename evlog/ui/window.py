"""Per-stage latency over the last minutes, for the live page: each second's batches are bucketed
at once (Arrow compute, no Python per event) into the same log-linear buckets as
evlog/live/histogram.py, and a rolling sum of those seconds gives p50/p99/p99.9 of the window.
The written_* stages count only the events whose source stamped when they were written."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from evlog.live.histogram import SUB, SUB_BITS, bucket_percentile
from evlog.live.metrics import STAGES, WRITTEN_STAGES
from evlog.projector import EventBatch
from evlog.projector.batch import COMMITTED, READ, WRITTEN

QUANTILES = (50.0, 99.0, 99.9)


def buckets_of(values: pa.Array) -> dict[int, int]:
    """{bucket index: count} of int64 nanosecond values, as histogram.bucket_of would give."""
    v = pc.max_element_wise(values, 0)
    small = pc.less(v, 2 * SUB)
    # bit_length as floor(log2(v)) + 1: exact in float64 for values below 2**50 (13 days in ns).
    bits = pc.add(pc.floor(pc.log2(pc.cast(pc.max_element_wise(v, 1), pa.float64()))), 1)
    shift = pc.cast(pc.subtract(bits, SUB_BITS + 1), pa.int64())
    shift = pc.max_element_wise(shift, 0)
    large = pc.add(pc.shift_left(shift, SUB_BITS), pc.shift_right(v, shift))
    index = pc.if_else(small, v, large)
    counts = pc.value_counts(index)
    return dict(
        zip(
            counts.field("values").to_pylist(),
            counts.field("counts").to_pylist(),
            strict=True,
        )
    )


@dataclass(slots=True)
class Second:
    """What became visible in one wall-clock second."""

    at: int
    events: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # events per stage
    buckets: dict[str, dict[int, int]] = field(default_factory=dict)
    max_ns: dict[str, int] = field(default_factory=dict)


class LatencyWindow:
    """Fed each live batch by `Projector.subscribe` (on the event loop: it only keeps the
    batch's stamp columns); `tick()` once a second turns them into that second's buckets."""

    def __init__(self, seconds: int = 300) -> None:
        self.seconds = seconds
        self.pending: list[tuple[pa.Array, pa.Array, pa.Array, int]] = []
        self.history: deque[Second] = deque()
        self.window: dict[str, dict[int, int]] = {s: {} for s in (*STAGES, *WRITTEN_STAGES)}
        self.window_counts: dict[str, int] = dict.fromkeys((*STAGES, *WRITTEN_STAGES), 0)

    @property
    def window_total(self) -> int:
        """Events in the window."""
        return self.window_counts[STAGES[0]]

    def observe(self, batch: EventBatch) -> None:
        c = batch.columns
        self.pending.append(
            (
                pa.array(c[READ], pa.int64()),
                pa.array(c[COMMITTED], pa.int64()),
                pa.array(c[WRITTEN], pa.int64()),
                batch.projected_ns,
            )
        )

    def tick(self, now_s: int | None = None) -> Second:
        """Close the current second: bucket what arrived, slide the window."""
        now_s = int(time.time()) if now_s is None else now_s
        sec = Second(at=now_s)
        if self.pending:
            read, committed, written = (
                pa.concat_arrays([p[i] for p in self.pending]) for i in range(3)
            )
            visible = pa.concat_arrays(
                [pa.repeat(pa.scalar(p[3], pa.int64()), len(p[0])) for p in self.pending]
            )
            self.pending.clear()
            sec.events = len(read)
            stages = [
                ("read_to_commit", committed, read),
                ("commit_to_visible", visible, committed),
                ("read_to_visible", visible, read),
            ]
            if written.null_count < len(written):
                stamped = pc.is_valid(written)
                w = written.filter(stamped)
                stages += [
                    ("written_to_read", read.filter(stamped), w),
                    ("written_to_visible", visible.filter(stamped), w),
                ]
            for stage, later, earlier in stages:
                d = pc.subtract(later, earlier)
                sec.counts[stage] = len(d)
                sec.buckets[stage] = buckets_of(d)
                sec.max_ns[stage] = int(pc.max(d).as_py())
        self._slide(sec)
        return sec

    def _slide(self, sec: Second) -> None:
        self.history.append(sec)
        self._add(sec, 1)
        while self.history and self.history[0].at <= sec.at - self.seconds:
            self._add(self.history.popleft(), -1)

    def _add(self, sec: Second, sign: int) -> None:
        for stage, n in sec.counts.items():
            self.window_counts[stage] += sign * n
        for stage, buckets in sec.buckets.items():
            w = self.window[stage]
            for b, n in buckets.items():
                left = w.get(b, 0) + sign * n
                if left:
                    w[b] = left
                else:
                    w.pop(b, None)

    def summary(self) -> dict[str, dict[str, float | None]]:
        """Per stage: p50, p99, p99.9 (ms) and the event count over the window; the written_*
        stages only while some event in the window has a written stamp."""
        out: dict[str, dict[str, float | None]] = {}
        for stage in (*STAGES, *WRITTEN_STAGES):
            total = self.window_counts[stage]
            if stage in WRITTEN_STAGES and not total:
                continue
            counts = self.window[stage]
            row: dict[str, float | None] = {
                f"p{q:g}": _ms(bucket_percentile(counts, total, q)) for q in QUANTILES
            }
            row["events"] = total
            out[stage] = row
        return out

    @staticmethod
    def second_summary(sec: Second) -> dict[str, float | None]:
        """p50, p99 and p99.9 (ms) of read_to_visible in one second (None: nothing arrived)."""
        counts = sec.buckets.get("read_to_visible", {})
        return {f"p{q:g}": _ms(bucket_percentile(counts, sec.events, q)) for q in QUANTILES}


def _ms(ns: float | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)
