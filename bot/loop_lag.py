"""Watches how late the event loop runs: a tick that should come every 50 ms, and its delay.

When the loop falls behind by more than `WARN_AFTER` a warning says so (at most one per
`WARN_EVERY` seconds, with how many ticks were late since the last one); when the monitor
stops it logs a summary line (p50, p99 and max), which the benchmarks read from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque

log = logging.getLogger(__name__)

PERIOD = 0.05
WARN_AFTER = 0.1
WARN_EVERY = 10.0
KEEP = 72_000  # one hour of ticks for the percentiles


class LoopLagMonitor:
    """`start()` inside the running loop; `await stop()` logs the summary."""

    def __init__(self, period: float = PERIOD, warn_after: float = WARN_AFTER) -> None:
        self.period = period
        self.warn_after = warn_after
        self.lags: deque[float] = deque(maxlen=KEEP)
        self.worst = 0.0
        self._late_since_warning = 0
        self._last_warning = -math.inf
        self._task: asyncio.Task[None] | None = None

    def start(self) -> LoopLagMonitor:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="loop-lag")
        return self

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self.lags:
            log.info(
                "event loop lag: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d ticks",
                self.percentile(50) * 1000,
                self.percentile(99) * 1000,
                self.worst * 1000,
                len(self.lags),
            )

    def percentile(self, q: float) -> float:
        """The `q`-th percentile of the recent lags, in seconds (nearest rank)."""
        if not self.lags:
            return math.nan
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]

    def record(self, lag: float, now: float) -> None:
        """Note one tick's delay; warn if the loop fell behind."""
        self.lags.append(lag)
        self.worst = max(self.worst, lag)
        if lag <= self.warn_after:
            return
        self._late_since_warning += 1
        if now - self._last_warning >= WARN_EVERY:
            log.warning(
                "the event loop fell behind by %.0f ms (%d late tick(s) since the last warning)",
                lag * 1000,
                self._late_since_warning,
            )
            self._last_warning = now
            self._late_since_warning = 0

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.period)  # a fixed tick is the measurement itself
            now = loop.time()
            self.record(max(0.0, now - before - self.period), now)
