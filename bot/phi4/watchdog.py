"""One stall timer per answer: a deadline each piece of data moves forward, checked lazily.

A fresh `asyncio.timeout` per read costs a timer in the loop's heap per chunk; this keeps one
timer for the whole answer and moves a float instead. The timer fires at the old deadline,
sees that data has come since, and sleeps again until the new one.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self


class StallWatchdog:
    """`async with StallWatchdog(120) as dog:` … `dog.arm()` before each read, `dog.feed()` on data.

    Only time spent waiting in a read counts: the stream's consumer may hold the data as long
    as it likes between reads. When the deadline passes during a read, the read is cancelled
    and the `async with` raises `TimeoutError`, as `asyncio.timeout` does.
    """

    __slots__ = (
        "_cancelling",
        "_handle",
        "_loop",
        "_task",
        "armed",
        "deadline",
        "expired",
        "seconds",
    )

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = 0.0
        self.armed = False
        self.expired = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[object] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._cancelling = 0

    async def __aenter__(self) -> Self:
        loop = self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("StallWatchdog must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self.deadline = loop.time() + self.seconds
        self._handle = loop.call_at(self.deadline, self._check)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.armed = False
        if self.expired and exc_type is asyncio.CancelledError:
            assert self._task is not None
            if self._task.uncancel() <= self._cancelling:
                raise TimeoutError from exc

    def feed(self, seconds: float | None = None) -> None:
        """Data came: the stream may now be silent for `seconds` (default: the watchdog's)."""
        assert self._loop is not None
        self.deadline = self._loop.time() + (self.seconds if seconds is None else seconds)

    def arm(self) -> None:
        """A read is about to wait. Time the consumer held the stream is not counted."""
        assert self._loop is not None
        self.armed = True
        now = self._loop.time()
        if now >= self.deadline:
            self.deadline = now + self.seconds
        if self._handle is None and not self.expired:
            self._handle = self._loop.call_at(self.deadline, self._check)

    def _check(self) -> None:
        assert self._loop is not None and self._task is not None
        self._handle = None
        if not self.armed:
            return  # `arm` starts the timer again
        if self._loop.time() < self.deadline:
            self._handle = self._loop.call_at(self.deadline, self._check)
            return
        self.expired = True
        self._task.cancel()
