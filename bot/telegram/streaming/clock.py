"""Time as the budget and the streamers see it, so tests can run them in virtual time."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

EPSILON = 1e-9
"""Comparisons of times computed along different paths may differ in the last bits."""


class Clock(Protocol):
    """Time as the budget and the streamers see it; a fake one makes tests deterministic."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock: monotonic seconds and asyncio's sleep."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
