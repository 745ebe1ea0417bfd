"""One shared budget of Telegram requests, granted in priority order so Telegram never says 429.

The model follows Telegram's flood limits with room to spare. Bot-wide, at most
`bot_rate / (1 + margin)` requests (28 of Telegram's 30) go out in any one-second window, so
a burst of first messages leaves at once instead of queueing behind an even spacing, and
intermediate edits may fill only part of it (24), so a new answer always finds a slot.
In one private chat two requests are at least `private_interval` (1 s) apart, in one group
at least `group_interval` (3 s, i.e. 20 a minute), each stretched by `margin` (5 %) so clock
jitter between us and Telegram cannot add up to a burst. Telegram's limits, read as sliding
windows (private: 3 in any second and 10 in any 10 s; group: 20 in any minute; bot: 30 in
any second), always hold what we spend; a typing indicator borrows its chat's next slot
(`slot_if_free`) and is paid back by the request after next.

When several requests could go, a chat's first message of an answer goes before final edits
and continuation messages, which go before intermediate edits; among equals the chat served
least recently goes first, so hundreds of streaming chats all keep getting updates.

Callers hold a slot with `async with budget.slot(chat, is_group=..., priority=...)` around
the one request it is for; the rate limiter every Bot API request passes through
(`limiter.BudgetRateLimiter`) lets such a request go at once and paces any other itself.
A chat of `None` is a request Telegram counts against the bot alone.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

# Comparisons of times computed along different paths may differ in the last bits.
_EPSILON = 1e-9
# 429s for this many different chats within `_BOT_WIDE_WINDOW` seconds mean a bot-wide limit.
_BOT_WIDE_CHATS = 3
_BOT_WIDE_WINDOW = 2.0
# The bot-wide limit is counted over sliding windows of this many seconds.
_WINDOW = 1.0
# A slot never released within this many seconds no longer holds the bot-wide budget.
_STUCK = 60.0
# Chat records idle this long are forgotten; they hold no reservation any more.
_FORGET_AFTER = 120.0
# The lane of requests charged to the bot alone; no Telegram chat has id 0.
_BOT_ONLY = 0


class Priority(IntEnum):
    """Which request goes first when slots are scarce; lower goes earlier."""

    FIRST = 0
    FINAL = 1
    EDIT = 2


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


@dataclass
class _ChatPace:
    """One chat's spacing: when it may be served next, and when it was served last.

    `borrowed_at` is when a slot was taken ahead of the spacing (`slot_if_free`), to be
    paid back by the request after next.
    """

    interval: float
    next_free: float = -math.inf
    last_served: int = -1
    borrowed_at: float | None = None


@dataclass(order=True)
class _Waiter:
    priority: Priority
    last_served: int
    seq: int
    chat_id: int = field(compare=False)
    future: asyncio.Future[None] = field(compare=False)
    granted_at: float = field(default=math.nan, compare=False)


@dataclass
class _HeldSlot:
    """A granted slot the running code holds, for one request to `chat_id`."""

    budget: RateBudget
    chat_id: int | None
    spent: bool = False


_HELD: ContextVar[_HeldSlot | None] = ContextVar("phi4bot_held_slot", default=None)


def held_slot_spent(budget: RateBudget) -> bool:
    """Whether the running code sends a request in a slot of `budget` (what a request
    reaching the network must be doing)."""
    held = _HELD.get()
    return held is not None and held.budget is budget and held.spent


class RateBudget:
    """Grants Telegram request slots; create one per application and share it."""

    def __init__(
        self,
        bot_rate: float = 30.0,
        *,
        private_interval: float = 1.0,
        group_interval: float = 3.0,
        margin: float = 0.05,
        clock: Clock | None = None,
    ) -> None:
        if bot_rate <= 0:
            raise ValueError("bot_rate must be positive")
        self.clock: Clock = clock or MonotonicClock()
        self._bot_rate = bot_rate
        self._margin = margin
        self._window_cap = 1
        self._edit_cap = 1
        self._set_caps(bot_rate)
        self._in_flight: deque[float] = deque()  # grant times of requests not yet released
        self._window: deque[float] = deque()  # release times within the last second
        self._private_interval = private_interval * (1 + margin)
        self._group_interval = group_interval * (1 + margin)
        self._bot_next = -math.inf
        self._lanes: dict[int, _ChatPace] = {}
        self._ready: list[_Waiter] = []  # chats free now, best first
        self._blocked: list[tuple[float, int, _Waiter]] = []  # by when their chat is free
        self._seq = itertools.count()
        self._grants = 0
        self._penalties: deque[tuple[float, int]] = deque()
        self._penalty_until = -math.inf
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = math.inf
        self._forget_at = self.clock.now() + _FORGET_AFTER

    def _set_caps(self, rate: float) -> None:
        self._window_cap = max(1, math.floor(rate / (1 + self._margin)))
        self._edit_cap = max(1, self._window_cap - max(1, self._window_cap // 7))

    def share(self, instances: int) -> None:
        """Telegram's limit is per bot: with `instances` processes sending for the same
        token, this one keeps an equal part of the bot-wide rate."""
        self._set_caps(self._bot_rate / max(1, instances))
        if self._timer is not None or self._ready or self._blocked:
            self._dispatch()

    @asynccontextmanager
    async def slot(
        self, chat_id: int | None, *, is_group: bool, priority: Priority
    ) -> AsyncIterator[None]:
        """Wait for a slot for one request to `chat_id` and hold it while the block runs;
        the request sent in the block passes the rate limiter at once. Released on exit,
        whatever happened."""
        await self.acquire(chat_id, is_group=is_group, priority=priority)
        try:
            with self.granted(chat_id):
                yield
        finally:
            self.release()

    @contextmanager
    def slot_if_free(
        self, chat_id: int | None, *, is_group: bool, priority: Priority = Priority.EDIT
    ) -> Iterator[bool]:
        """A slot only if one is free this instant and nobody waits for the budget: for
        requests worth sending only now (the typing indicator). Yields whether it was
        granted; a granted one is held and released like `slot`'s.

        The slot is borrowed from the chat's spacing, so it never delays what follows: the
        chat's next request may go at once, and the one after it waits an interval longer.
        Any span of the chat's requests thus holds no more than the spacing allows, plus
        one request early.
        """
        if not self._grant_now(chat_id, is_group=is_group, priority=priority):
            yield False
            return
        try:
            with self.granted(chat_id):
                yield True
        finally:
            self.release()

    @contextmanager
    def granted(self, chat_id: int | None) -> Iterator[None]:
        """Mark the block as holding a slot acquired by hand for one request to `chat_id`
        (the streamer acquires first and renders what to send once granted)."""
        token = _HELD.set(_HeldSlot(self, chat_id))
        try:
            yield
        finally:
            _HELD.reset(token)

    def claim(self, chat_id: int | None) -> bool:
        """Whether the running code holds an unspent slot of this budget for a request to
        `chat_id`; asking spends it, so one slot lets exactly one request through. A
        request without a chat (`None`: an inline or guest message) may spend a chat's
        slot, which was charged to the bot as well."""
        held = _HELD.get()
        if held is None or held.budget is not self or held.spent:
            return False
        if chat_id is not None and held.chat_id != chat_id:
            return False
        held.spent = True
        return True

    def claim_held(self) -> tuple[bool, int | None]:
        """Like `claim`, for a request that names no chat although it is about one (a guest
        message, edited by its inline id): the slot held is spent whatever chat it was
        granted for. Returns whether one was, and that chat."""
        held = _HELD.get()
        if held is None or held.budget is not self or held.spent:
            return False, None
        held.spent = True
        return True, held.chat_id

    async def acquire(self, chat_id: int | None, *, is_group: bool, priority: Priority) -> None:
        """Wait for a slot for one request to `chat_id`; it is spent when this returns.

        Call `release()` once the request has its answer (or was not sent after all).

        Cancelling the wait withdraws the request; if the slot had already been granted,
        it is handed back, so a cancelled acquire reserves nothing.
        """
        key = _BOT_ONLY if chat_id is None else chat_id
        lane = self._lane(key, is_group=is_group)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(priority, lane.last_served, next(self._seq), key, future)
        heapq.heappush(self._blocked, (lane.next_free, waiter.seq, waiter))
        self._dispatch()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._hand_back(waiter)
            future.cancel()
            self._dispatch()
            raise

    def penalize(
        self, chat_id: int | None, retry_after: float, *, bot_wide: bool | None = None
    ) -> None:
        """Telegram answered 429: block the chat (or, when it looks bot-wide, everyone).

        `bot_wide=None` guesses: 429s for several chats within a short window mean the
        bot-wide limit was hit, since each chat on its own was paced. A request without a
        chat (`None`) met the bot-wide limit.
        """
        if chat_id is None:
            chat_id, bot_wide = _BOT_ONLY, True
        now = self.clock.now()
        until = now + max(0.0, retry_after)
        self._penalty_until = max(self._penalty_until, until)
        lane = self._lane(chat_id, is_group=chat_id < 0)
        lane.next_free = max(lane.next_free, until)
        self._penalties.append((now, chat_id))
        while self._penalties and self._penalties[0][0] < now - _BOT_WIDE_WINDOW:
            self._penalties.popleft()
        if bot_wide is None:
            bot_wide = len({chat for _, chat in self._penalties}) >= _BOT_WIDE_CHATS
        if bot_wide:
            self._bot_next = max(self._bot_next, until)
        self._dispatch()

    def release(self) -> None:
        """The request of a granted slot got its answer (or was never sent).

        A request counts against the bot-wide window from its grant until one second after
        it is released, so requests that reach Telegram late (a busy event loop, a slow
        connection) can never bunch up with the next second's.
        """
        if self._in_flight:
            self._in_flight.popleft()
        self._window.append(self.clock.now())
        self._dispatch()

    # -- what an operator sees (read when metrics are scraped) --------------------------

    @property
    def window_cap(self) -> int:
        """Requests allowed in any one-second window."""
        return self._window_cap

    def penalty_remaining(self) -> float:
        """Seconds until the longest 429 penalty still running is over; 0 when none is."""
        return max(0.0, self._penalty_until - self.clock.now())

    def window_used(self) -> int:
        """Requests counted against the bot-wide window right now (in flight or recent)."""
        since = self.clock.now() - _WINDOW
        return len(self._in_flight) + sum(1 for t in self._window if t > since)

    def _bot_free_at(self, now: float, priority: Priority) -> float:
        """When the bot-wide budget next allows a request of `priority`: after any penalty,
        and once the one-second window has room (edits leave some of it to others)."""
        while self._window and self._window[0] <= now - _WINDOW + _EPSILON:
            self._window.popleft()
        while self._in_flight and self._in_flight[0] < now - _STUCK:
            self._in_flight.popleft()
        cap = self._edit_cap if priority >= Priority.EDIT else self._window_cap
        excess = len(self._in_flight) + len(self._window) - cap
        if excess < 0:
            return self._bot_next
        if excess < len(self._window):
            return max(self._bot_next, self._window[excess] + _WINDOW)
        if self._in_flight:  # only releases free the budget; until then, a stuck guard
            return max(self._bot_next, self._in_flight[0] + _STUCK)
        return self._bot_next

    # -- scheduling -------------------------------------------------------------------

    def _lane(self, chat_id: int | None, *, is_group: bool) -> _ChatPace:
        if chat_id is None:
            chat_id = _BOT_ONLY
        lane = self._lanes.get(chat_id)
        if lane is None:
            if chat_id == _BOT_ONLY:
                interval = 0.0
            else:
                interval = self._group_interval if is_group else self._private_interval
            lane = self._lanes[chat_id] = _ChatPace(interval)
        return lane

    def _grant_now(self, chat_id: int | None, *, is_group: bool, priority: Priority) -> bool:
        """Grant a slot at once if the chat is free and nobody waits; False otherwise."""
        now = self.clock.now()
        self._promote(now)
        lane = self._lane(chat_id, is_group=is_group)
        if self._ready or lane.borrowed_at is not None or lane.next_free > now + _EPSILON:
            return False
        if now + _EPSILON < self._bot_free_at(now, priority):
            return False
        self._grants += 1
        lane.borrowed_at = now
        lane.last_served = self._grants
        self._in_flight.append(now)
        return True

    def _grant(self, lane: _ChatPace, now: float) -> None:
        self._grants += 1
        lane.next_free = now + lane.interval
        if lane.borrowed_at is not None:  # the borrowed slot is paid back now
            lane.next_free = max(now, lane.borrowed_at + lane.interval) + lane.interval
            lane.borrowed_at = None
        lane.last_served = self._grants
        self._in_flight.append(now)

    def _dispatch(self) -> None:
        """Grant every slot that is due now, then wake up again when the next one is."""
        now = self.clock.now()
        while True:
            self._promote(now)
            if not self._ready or now + _EPSILON < self._bot_free_at(now, self._ready[0].priority):
                break
            waiter = heapq.heappop(self._ready)
            if waiter.future.done():
                continue
            lane = self._lanes[waiter.chat_id]
            if lane.next_free > now + _EPSILON:
                heapq.heappush(self._blocked, (lane.next_free, waiter.seq, waiter))
                continue
            waiter.granted_at = now
            self._grant(lane, now)
            waiter.future.set_result(None)
        if now >= self._forget_at:
            self._forget_idle(now)
        self._arm(self._next_event(now))

    def _promote(self, now: float) -> None:
        """Move waiters whose chat is free by now into the ready heap."""
        while self._blocked and self._blocked[0][0] <= now + _EPSILON:
            _, seq, waiter = heapq.heappop(self._blocked)
            if waiter.future.done():
                continue
            lane = self._lanes[waiter.chat_id]
            if lane.next_free > now + _EPSILON:
                heapq.heappush(self._blocked, (lane.next_free, seq, waiter))
                continue
            waiter.last_served = lane.last_served
            heapq.heappush(self._ready, waiter)

    def _next_event(self, now: float) -> float:
        while self._ready and self._ready[0].future.done():
            heapq.heappop(self._ready)
        while self._blocked and self._blocked[0][2].future.done():
            heapq.heappop(self._blocked)
        if self._ready:
            return max(now, self._bot_free_at(now, self._ready[0].priority))
        if self._blocked:
            return max(self._blocked[0][0], self._bot_free_at(now, Priority.FIRST))
        return math.inf

    def _arm(self, at: float) -> None:
        """Keep one timer task, due at the earliest moment a grant may become possible."""
        if self._timer is not None and not self._timer.done():
            if self._timer_at <= at + _EPSILON and at != math.inf:
                return
            self._timer.cancel()
            self._timer = None
        if at == math.inf:
            return
        self._timer_at = at
        self._timer = asyncio.get_running_loop().create_task(self._wake_at(at))

    async def _wake_at(self, at: float) -> None:
        await self.clock.sleep(max(0.0, at - self.clock.now()))
        self._timer = None
        self._dispatch()

    def _hand_back(self, waiter: _Waiter) -> None:
        """Undo a grant that was never used, unless later grants or a 429 built on it."""
        if self._in_flight:
            self._in_flight.pop()
        lane = self._lanes.get(waiter.chat_id)
        if lane is None or lane.last_served != self._grants:
            return
        if lane.next_free == waiter.granted_at + lane.interval:
            lane.next_free = waiter.granted_at
        lane.last_served = waiter.last_served

    def _forget_idle(self, now: float) -> None:
        """Drop chats not served for a while; their spacing has long run out."""
        waiting = {w.chat_id for w in self._ready} | {w.chat_id for _, _, w in self._blocked}
        for chat_id in [
            chat_id
            for chat_id, lane in self._lanes.items()
            if lane.next_free < now - _FORGET_AFTER and chat_id not in waiting
        ]:
            del self._lanes[chat_id]
        self._forget_at = now + _FORGET_AFTER
