"""The pipeline panel's numbers: once a second, one point (events/s appended and projected, lag,
dead letters, read_to_visible p50/p99 of that second) sent to every open page, with the last
minutes kept so a page opened late starts with a full chart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from typing import Any

from evlog.adapters.lineage import is_kept
from evlog.live.metrics import STAGES, WRITTEN_STAGES
from evlog.projector import QueryError

from .sources import Source
from .window import QUANTILES, LatencyWindow

HISTORY_S = 300
SOURCES_EVERY = 5  # ticks between re-reads of the source checkpoints


# Without a follower in this process, latency comes from the `latency` table's live rows.
def _table_latency_sql(written: bool) -> str:
    """Per stage quantiles over the window (the row with sec NULL), and read_to_visible's per
    second; `written`: the table has written_ns (latency v3), so the written_* stages too."""
    stages = [*STAGES, *(WRITTEN_STAGES if written else ())]
    quantiles = ", ".join(str(q / 100) for q in QUANTILES)
    extra = (
        ", read_ns - written_ns AS written_to_read, projected_ns - written_ns AS written_to_visible"
        if written
        else ""
    )
    per_second = [
        f"quantile_disc({s}, [{quantiles}])" if s == "read_to_visible" else "NULL" for s in stages
    ]
    return f"""
WITH d AS (
    SELECT projected_ns // 1000000000 AS sec, committed_ns - read_ns AS read_to_commit,
           projected_ns - committed_ns AS commit_to_visible,
           projected_ns - read_ns AS read_to_visible{extra}
    FROM latency WHERE mode = 'live' AND projected_ns > epoch_ns(now()) - {HISTORY_S}000000000
)
SELECT NULL AS sec, {", ".join(f"count({s})" for s in stages)},
       {", ".join(f"quantile_disc({s}, [{quantiles}]) AS {s}" for s in stages)}
FROM d
UNION ALL
SELECT sec, {", ".join("count(*)" for _ in stages)}, {", ".join(per_second)}
FROM d GROUP BY sec
"""


class PipelineHub:
    def __init__(self, source: Source, budget_ms: float) -> None:
        self.source = source
        self.budget_ms = budget_ms
        self.window: LatencyWindow | None = LatencyWindow(HISTORY_S) if source.live else None
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_S)
        self.listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self.sources: list[dict[str, Any]] = []
        self.latency: dict[str, Any] = {}
        self._prev: tuple[float, int, int] | None = None
        self._ticks = 0
        self._table_seconds: dict[int, dict[str, float | None]] = {}

    def listen(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=120)
        self.listeners.add(q)
        return q

    def unlisten(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self.listeners.discard(q)

    async def run(self) -> None:
        """One point a second until cancelled (aligned to wall-clock seconds)."""
        while True:
            await asyncio.sleep(1 - time.time() % 1 + 0.001)
            try:
                point = await self.sample()
            except Exception as exc:  # the page must outlive a bad second (a file replaced...)
                point = {"t": int(time.time()), "error": f"{type(exc).__name__}: {exc}"}
            self.history.append(point)
            for q in list(self.listeners):
                with contextlib.suppress(asyncio.QueueFull):  # a stalled page misses points
                    q.put_nowait(point)

    async def sample(self) -> dict[str, Any]:
        now = time.monotonic()
        p = await self.source.progress()
        done = p["projected_total"] if p["projected_total"] is not None else p["position"]
        appended_rate = projected_rate = 0.0
        if self._prev is not None:
            dt = max(1e-3, now - self._prev[0])
            appended_rate = max(0, p["log_head"] - self._prev[1]) / dt
            projected_rate = max(0, done - self._prev[2]) / dt
        self._prev = (now, p["log_head"], done)
        point: dict[str, Any] = {
            "t": int(time.time()) - 1,  # the second just closed
            **p,
            "appended_per_s": round(appended_rate, 1),
            "projected_per_s": round(projected_rate, 1),
            "dead_letters": await self._open_dead_letters(),
        }
        refreshed = self._ticks % SOURCES_EVERY == 0
        if refreshed:
            self.sources = await self._sources()
            if self.window is None:
                await self._latency_from_table()
        self._ticks += 1
        if self.window is not None:
            sec = self.window.tick(point["t"])
            point["read_to_visible"] = self.window.second_summary(sec)
            self.latency = self.window.summary()
        else:
            point["read_to_visible"] = self._table_seconds.get(point["t"], {})
        point["latency"] = self.latency
        if refreshed:
            point["sources"] = self.sources
        return point

    async def _latency_from_table(self) -> None:
        try:
            rows = (await self.source.query(_table_latency_sql(written=True))).rows
            stages = [*STAGES, *WRITTEN_STAGES]
        except QueryError:  # a latency table from before written_ns (not upgraded yet)
            try:
                rows = (await self.source.query(_table_latency_sql(written=False))).rows
            except QueryError:
                return
            stages = list(STAGES)
        seconds: dict[int, dict[str, float | None]] = {}
        for sec, *rest in rows:
            counts, values = rest[: len(stages)], rest[len(stages) :]
            if sec is None:
                self.latency = {
                    stage: {
                        **{f"p{q:g}": _ms(v[i] if v else None) for i, q in enumerate(QUANTILES)},
                        "events": n,
                    }
                    for stage, n, v in zip(stages, counts, values, strict=True)
                    if n or stage not in WRITTEN_STAGES
                }
            else:
                r2v = values[stages.index("read_to_visible")]
                seconds[int(sec)] = {f"p{q:g}": _ms(r2v[i]) for i, q in enumerate(QUANTILES)}
        self._table_seconds = seconds
        for point in self.history:
            if point["t"] in seconds:
                point["read_to_visible"] = seconds[point["t"]]

    async def _open_dead_letters(self) -> int:
        return await self.source.log.dead_letter_count(open_only=True)

    async def _sources(self) -> list[dict[str, Any]]:
        out = []
        for cp in await self.source.log.source_checkpoints():
            if is_kept(cp["source"]):
                continue  # a source's earlier generation, stored apart: not a source
            pos = cp["position"] if isinstance(cp["position"], dict) else {}
            item: dict[str, Any] = {
                "source": cp["source"],
                "last_seq": cp["last_seq"],
                "updated": cp["updated_ns"] // 1_000_000_000 if cp["updated_ns"] else None,
                "line": pos.get("line"),
                "offset": pos.get("offset"),
                "size": None,
            }
            path = cp["source"].removeprefix("file:")
            if path != cp["source"] and pos.get("offset") is not None:
                item["size"] = await asyncio.to_thread(_size, path)
            out.append(item)
        return out

    def snapshot(self) -> dict[str, Any]:
        return {
            "budget_ms": self.budget_ms,
            "history": list(self.history),
            "latency": self.latency,
            "sources": self.sources,
        }


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _ms(ns: float | int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)
