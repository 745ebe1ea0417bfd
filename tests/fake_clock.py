"""A virtual clock for pacing tests: time moves only when every task is waiting for it."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from contextvars import Context
from typing import TypeVar, TypeVarTuple

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
# More consecutive callbacks than any test runs before its tasks all wait.
_MAX_STEPS = 100_000


class CountingEventLoop(asyncio.SelectorEventLoop):
    """asyncio's own loop, which also knows whether any callback is still queued to run.

    Every task step and future callback reaches the loop through `call_soon`, so counting
    what it queued and what has run (or was cancelled) tells when all tasks wait: the
    moment a virtual clock may move. Timers and other threads do not count: the code under
    a virtual clock sleeps on that clock, not on the loop's.
    """

    def __init__(self) -> None:
        super().__init__()
        self._queued: dict[int, asyncio.Handle] = {}
        self._serial = itertools.count()

    def call_soon(
        self,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: Context | None = None,
    ) -> asyncio.Handle:
        key = next(self._serial)
        handle = super().call_soon(self._run_queued, key, callback, *args, context=context)
        self._queued[key] = handle
        return handle

    def _run_queued(self, key: int, callback: Callable[[*Ts], object], *args: *Ts) -> None:
        del self._queued[key]
        callback(*args)

    def busy(self) -> bool:
        """Whether a queued callback is still to run."""
        for key in [key for key, handle in self._queued.items() if handle.cancelled()]:
            del self._queued[key]
        return bool(self._queued)


class FakeClock:
    """A pacing `Clock` (see `bot.telegram.streaming.clock`) that runs in virtual time.

    Whenever the event loop has nothing left to run, the clock jumps to the earliest pending
    `sleep` deadline and wakes those sleepers. A run is therefore deterministic and takes
    no real time, however many virtual seconds it spans. It needs a `CountingEventLoop`:
    tests marked `virtual_time` run on one (see `tests/conftest.py`).
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._seq), future))
        await future

    async def settle(self) -> None:
        """Let every task run until all of them wait (on the clock or on each other)."""
        loop = asyncio.get_running_loop()
        if not isinstance(loop, CountingEventLoop):
            raise RuntimeError("FakeClock needs a CountingEventLoop: mark the test virtual_time")
        for _ in range(_MAX_STEPS):
            await asyncio.sleep(0)
            if not loop.busy():
                return
        raise RuntimeError("the event loop never went idle")

    async def advance(self) -> bool:
        """Settle, then jump to the next deadline and wake its sleepers; False if none."""
        await self.settle()
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        if not self._sleepers:
            return False
        self._now = max(self._now, self._sleepers[0][0])
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        await self.settle()
        return True

    async def run(self, awaitable: Awaitable[T], *, max_seconds: float = 3600.0) -> T:
        """Await `awaitable`, moving virtual time forward whenever everything waits."""
        task = asyncio.ensure_future(awaitable)
        deadline = self._now + max_seconds
        while not task.done():
            await self.settle()
            if task.done():
                break
            if self._now > deadline:
                task.cancel()
                raise TimeoutError(f"still running after {max_seconds} virtual seconds")
            if not await self.advance():
                task.cancel()
                raise RuntimeError("deadlock: the task waits but no sleeper can wake it")
        return task.result()

    async def run_for(self, seconds: float) -> None:
        """Let virtual time pass by `seconds`, running whatever is due meanwhile."""
        await self.run(self.sleep(seconds))


def run_virtual(main: Awaitable[T]) -> T:
    """`asyncio.run` for a synchronous test (a Hypothesis one) that uses a `FakeClock`."""

    async def wrapped() -> T:
        return await main

    with asyncio.Runner(loop_factory=CountingEventLoop) as runner:
        return runner.run(wrapped())
