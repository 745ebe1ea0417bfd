"""Tries a store operation again while the database is locked, full or out of reach, for a while.

A message must not be lost to a database that is down for a few seconds: the operation is
tried again with a growing pause (`first_pause`, doubling up to `longest_pause`) until it
works or `limit` seconds have passed since the first try; then `StoreStillUnavailable`
says so. Only failures that may pass (`storage.store_unavailable`) are tried again; any other
error is raised at once. The log gets one line when an outage starts (one per reason: a
lock, a full disk, a read-only file, a lost server, a timeout), one when the database works
again, and one per operation given up, with how many turns were refused so far.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.conversation.errors import StoreStillUnavailable
from storage import StoreUnavailable, Unavailability, store_unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_PAUSE = 0.1
LONGEST_PAUSE = 1.0
"""Short enough that a turn is stored within about a second of the database coming back."""


class StoreRetry:
    """Runs store operations through outages of up to `limit` seconds; shared by every
    caller, so an outage is logged once, not once per waiting turn."""

    def __init__(
        self,
        limit: float,
        *,
        first_pause: float = FIRST_PAUSE,
        longest_pause: float = LONGEST_PAUSE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit = limit
        self._first_pause = first_pause
        self._longest_pause = longest_pause
        self._clock = clock
        self._sleep = sleep
        self.refused = 0
        """Turns given up on since start-up (see `refuse_turn`)."""
        self._failing: set[Unavailability] = set()
        self._outage_since: float | None = None
        self._refused_in_outage = 0

    async def run(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation()`'s result, trying again through failures that may pass; raises
        `StoreStillUnavailable` once `limit` seconds have gone by. `what` names the
        operation in the log ("storing message 7 in chat 42")."""
        started = self._clock()
        pause = self._first_pause
        while True:
            try:
                result = await operation()
            except Exception as exc:
                problem = store_unavailable(exc)
                if problem is None:
                    raise
                waited = self._clock() - started
                self._failed(problem, what, started)
                if waited >= self.limit:
                    raise StoreStillUnavailable(problem, waited) from exc
                await self._sleep(min(pause, self.limit - waited))
                pause = min(pause * 2, self._longest_pause)
                continue
            self._worked()
            return result

    def refuse_turn(self, what: str, failure: StoreStillUnavailable) -> None:
        """Count and log a turn given up on: its sender is asked to send it again."""
        self.refused += 1
        self._refused_in_outage += 1
        log.error(
            "gave up %s after %.0f s: %s; %d turns refused since start-up",
            what,
            failure.waited,
            failure.problem,
            self.refused,
        )

    def _failed(self, problem: StoreUnavailable, what: str, started: float) -> None:
        if self._outage_since is None or started < self._outage_since:
            self._outage_since = started
        if problem.reason not in self._failing:
            self._failing.add(problem.reason)
            log.warning(
                "%s: %s failed (%s); trying again for up to %g s",
                _HEADLINES[problem.reason],
                what,
                problem.detail,
                self.limit,
            )
        else:
            log.debug("%s failed again: %s", what, problem)

    def _worked(self) -> None:
        if self._outage_since is None:
            return
        lasted = self._clock() - self._outage_since
        log.warning(
            "the database works again after %.1f s; %d turns were refused meanwhile",
            lasted,
            self._refused_in_outage,
        )
        self._failing.clear()
        self._outage_since = None
        self._refused_in_outage = 0


_HEADLINES = {
    Unavailability.LOCKED: "the database is locked by another writer (SQLITE_BUSY or a lock)",
    Unavailability.FULL: "the database's disk is full (SQLITE_FULL or disk_full)",
    Unavailability.READ_ONLY: "the database is read-only (SQLITE_READONLY or a standby)",
    Unavailability.DISK_ERROR: "the database's disk failed (SQLITE_IOERR)",
    Unavailability.UNREACHABLE: "the database server cannot be reached",
    Unavailability.TIMEOUT: "the database did not answer in time",
}
"""One distinct log line per reason, so an operator can grep for the one they see."""
