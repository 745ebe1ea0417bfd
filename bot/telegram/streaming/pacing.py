"""One shared budget of Telegram requests, granted in priority order so Telegram never says 429.

The model follows Telegram's flood limits with room to spare. Bot-wide, at most
`bot_rate / (1 + margin)` requests (28 of Telegram's 30) go out in any one-second window
(`bot_window.BotWindow`), intermediate edits filling only part of it (24).
In one private chat two requests are at least `private_interval` (1 s) apart, in one group
at least `group_interval` (3 s, i.e. 20 a minute; `chat_spacing`), each stretched by
`margin` (5 %) so clock jitter between us and Telegram cannot add up to a burst. Telegram's
limits, read as sliding windows (private: 3 in any second and 10 in any 10 s; group: 20 in
any minute; bot: 30 in any second), always hold what we spend; a typing indicator borrows
its chat's next slot (`slot_if_free`) and is paid back by the request after next.

When several requests could go, a chat's first message of an answer goes before final edits
and continuation messages, which go before intermediate edits; among equals the chat served
least recently goes first, so hundreds of streaming chats all keep getting updates.

Callers hold a slot with `async with budget.slot(chat, is_group=..., priority=...)` around
the one request it is for; the rate limiter every Bot API request passes through
(`limiter.BudgetRateLimiter`) lets such a request go at once (`held_slots`) and paces any
other itself. A chat of `None` is a request Telegram counts against the bot alone.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from enum import IntEnum

from bot.telegram.streaming import held_slots
from bot.telegram.streaming.bot_window import BotWindow
from bot.telegram.streaming.chat_spacing import BOT_ONLY, ChatPace, ChatPaces
from bot.telegram.streaming.clock import EPSILON, Clock, MonotonicClock
from bot.telegram.streaming.held_slots import held_slot_spent as held_slot_spent


class Priority(IntEnum):
    """Which request goes first when slots are scarce; lower goes earlier."""

    FIRST = 0
    FINAL = 1
    EDIT = 2


@dataclass(order=True)
class _Waiter:
    priority: Priority
    last_served: int
    seq: int
    chat_id: int = field(compare=False)
    future: asyncio.Future[None] = field(compare=False)
    granted_at: float = field(default=math.nan, compare=False)


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
        self._bot = BotWindow(bot_rate, margin)
        self._paces = ChatPaces(
            private_interval * (1 + margin), group_interval * (1 + margin), self.clock.now()
        )
        self._ready: list[_Waiter] = []  # chats free now, best first
        self._blocked: list[tuple[float, int, _Waiter]] = []  # by when their chat is free
        self._seq = itertools.count()
        self._grants = 0
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = math.inf

    def share(self, instances: int) -> None:
        """Telegram's limit is per bot: with `instances` processes sending for the same
        token, this one keeps an equal part of the bot-wide rate."""
        self._bot.share(instances)
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
        with held_slots.holding(self, chat_id):
            yield

    def claim(self, chat_id: int | None) -> bool:
        """Whether the running code holds an unspent slot of this budget for a request to
        `chat_id`; asking spends it, so one slot lets exactly one request through. A
        request without a chat (`None`: an inline or guest message) may spend a chat's
        slot, which was charged to the bot as well."""
        return held_slots.claim(self, chat_id)

    def claim_held(self) -> tuple[bool, int | None]:
        """Like `claim`, for a request that names no chat although it is about one (a guest
        message, edited by its inline id): the slot held is spent whatever chat it was
        granted for. Returns whether one was, and that chat."""
        return held_slots.claim_held(self)

    async def acquire(self, chat_id: int | None, *, is_group: bool, priority: Priority) -> None:
        """Wait for a slot for one request to `chat_id`; it is spent when this returns.

        Call `release()` once the request has its answer (or was not sent after all).

        Cancelling the wait withdraws the request; if the slot had already been granted,
        it is handed back, so a cancelled acquire reserves nothing.
        """
        key = BOT_ONLY if chat_id is None else chat_id
        lane = self._paces.of(key, is_group=is_group)
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
            chat_id, bot_wide = BOT_ONLY, True
        now = self.clock.now()
        until = now + max(0.0, retry_after)
        lane = self._paces.of(chat_id, is_group=chat_id < 0)
        lane.next_free = max(lane.next_free, until)
        self._bot.penalize(now, chat_id, until, bot_wide=bot_wide)
        self._dispatch()

    def release(self) -> None:
        """The request of a granted slot got its answer (or was never sent); it counts
        against the bot-wide window for one second more."""
        self._bot.release(self.clock.now())
        self._dispatch()

    # -- what an operator sees (read when metrics are scraped) --------------------------

    @property
    def window_cap(self) -> int:
        """Requests allowed in any one-second window."""
        return self._bot.cap

    def penalty_remaining(self) -> float:
        """Seconds until the longest 429 penalty still running is over; 0 when none is."""
        return self._bot.penalty_remaining(self.clock.now())

    def window_used(self) -> int:
        """Requests counted against the bot-wide window right now (in flight or recent)."""
        return self._bot.used(self.clock.now())

    # -- scheduling -------------------------------------------------------------------

    def _bot_free_at(self, now: float, priority: Priority) -> float:
        """When the bot as a whole next allows a request of `priority` (intermediate edits
        leave part of the window to others)."""
        return self._bot.free_at(now, edit=priority >= Priority.EDIT)

    def _grant_now(self, chat_id: int | None, *, is_group: bool, priority: Priority) -> bool:
        """Grant a slot at once if the chat is free and nobody waits; False otherwise."""
        now = self.clock.now()
        self._promote(now)
        lane = self._paces.of(chat_id, is_group=is_group)
        if self._ready or lane.borrowed_at is not None or lane.next_free > now + EPSILON:
            return False
        if now + EPSILON < self._bot_free_at(now, priority):
            return False
        self._grants += 1
        lane.borrow(now, self._grants)
        self._bot.grant(now)
        return True

    def _grant(self, lane: ChatPace, now: float) -> None:
        self._grants += 1
        lane.take(now, self._grants)
        self._bot.grant(now)

    def _dispatch(self) -> None:
        """Grant every slot that is due now, then wake up again when the next one is."""
        now = self.clock.now()
        while True:
            self._promote(now)
            if not self._ready or now + EPSILON < self._bot_free_at(now, self._ready[0].priority):
                break
            waiter = heapq.heappop(self._ready)
            if waiter.future.done():
                continue
            lane = self._paces[waiter.chat_id]
            if lane.next_free > now + EPSILON:
                heapq.heappush(self._blocked, (lane.next_free, waiter.seq, waiter))
                continue
            waiter.granted_at = now
            self._grant(lane, now)
            waiter.future.set_result(None)
        self._paces.forget_idle(now, self._waiting_chats)
        self._arm(self._next_event(now))

    def _promote(self, now: float) -> None:
        """Move waiters whose chat is free by now into the ready heap."""
        while self._blocked and self._blocked[0][0] <= now + EPSILON:
            _, seq, waiter = heapq.heappop(self._blocked)
            if waiter.future.done():
                continue
            lane = self._paces[waiter.chat_id]
            if lane.next_free > now + EPSILON:
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
            if self._timer_at <= at + EPSILON and at != math.inf:
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
        self._bot.hand_back()
        lane = self._paces.get(waiter.chat_id)
        if lane is not None and lane.last_served == self._grants:
            lane.hand_back(waiter.granted_at, waiter.last_served)

    def _waiting_chats(self) -> set[int]:
        """The chats with a request waiting for a slot."""
        return {w.chat_id for w in self._ready} | {w.chat_id for _, _, w in self._blocked}
