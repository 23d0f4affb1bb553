"""How late the event loop runs a timer: the direct measure of "the asyncio loop is never
blocked". A heartbeat sleeps `interval_s` and records how much later than asked it woke.

Each wake-up costs ~0.2 ms of CPU on the 2-core test machine, so the interval is a trade: a
1 ms heartbeat would itself use a fifth of a core (20 µs per event at 10k events/s, the whole
of issue 19's target). While the pipeline is busy (`busy()` says so) a follower beats every
10 ms (every block of 10 ms or more is seen, shorter ones in proportion), the load test every
5 ms; when idle, every second, so a follower with nothing to do stays near zero CPU."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .histogram import Histogram

BUSY_INTERVAL_S = 0.01  # a follower's metrics: ~2% of a core while busy (see the docstring)
LOADTEST_INTERVAL_S = 0.005
IDLE_INTERVAL_S = 1.0


class LoopLag:
    """Records the lateness of each heartbeat in `histogram` (ns); run `beat()` as a task."""

    def __init__(
        self,
        busy: Callable[[], bool] = lambda: True,
        *,
        interval_s: float = BUSY_INTERVAL_S,
        idle_interval_s: float = IDLE_INTERVAL_S,
    ) -> None:
        self.histogram = Histogram()
        self.busy = busy
        self.interval_s = interval_s
        self.idle_interval_s = idle_interval_s

    def reset(self) -> None:
        self.histogram = Histogram()

    async def beat(self) -> None:
        """Until cancelled."""
        while True:
            interval = self.interval_s if self.busy() else self.idle_interval_s
            asked = time.perf_counter_ns() + int(interval * 1e9)
            await asyncio.sleep(interval)
            self.histogram.record(max(0, time.perf_counter_ns() - asked))
