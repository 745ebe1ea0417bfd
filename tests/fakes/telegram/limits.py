"""Telegram's flood control modelled as token buckets per chat and for the whole bot.

The model (`Limits()` defaults are the documented Telegram figures):

* every private chat has a bucket of `private_burst` tokens refilled at `private_per_sec`;
* every group or supergroup has a bucket of `group_per_min` tokens refilled at
  `group_per_min / 60` per second (20 in a burst, then one every 3 s);
* the bot as a whole has a bucket of `bot_per_sec` tokens refilled at `bot_per_sec`.

A counted request (see `COUNTED_METHODS`) needs one token from its chat's bucket and one
from the bot's. Without them it is refused with 429 and `retry_after` = the whole seconds
until a token is back (at least 1); that window is a penalty for the refusing bucket.
A request sent *during* a penalty is refused too and still spends a token, driving the
bucket into debt: each one extends the penalty by one refill period (1 s in a private chat,
3 s in a group). A bot that honours `retry_after` is never penalised twice; a bot that keeps
hammering sees penalties grow without bound, as on Telegram.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

COUNTED_METHODS = frozenset(
    {
        "sendmessage",
        "editmessagetext",
        "editmessagereplymarkup",
        "sendmessagedraft",
        "senddocument",
        "deletemessage",
        "answerguestquery",
    }
)
# Tolerance for float drift, so a bot waiting exactly `retry_after` is not refused again.
_EPSILON = 1e-9

Clock = Callable[[], float]


@dataclass(frozen=True)
class Limits:
    """The flood limits to enforce; pass `limits=None` to the fake to disable them."""

    private_per_sec: float = 1.0
    private_burst: int = 3
    group_per_min: float = 20.0
    bot_per_sec: float = 30.0


TELEGRAM_LIMITS = Limits()


class ManualClock:
    """A clock that moves only when told to, for testing flood limits without waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def real_clock() -> float:
    """Monotonic seconds: the fake's default clock for limits and timestamps."""
    return time.monotonic()


class TokenBucket:
    """`capacity` tokens refilled continuously at `rate` per second, with a penalty window."""

    __slots__ = ("capacity", "penalty_until", "rate", "stamp", "tokens")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.stamp = now
        self.penalty_until = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def ready(self, now: float) -> bool:
        return now >= self.penalty_until and self.tokens >= 1 - _EPSILON

    def refuse(self, now: float) -> int:
        """Record a refused request and return its `retry_after` in whole seconds."""
        if now < self.penalty_until:
            self.tokens -= 1
            earliest = now + (1 - self.tokens) / self.rate
            self.penalty_until = max(self.penalty_until, earliest)
        else:
            self.penalty_until = now + math.ceil((1 - self.tokens) / self.rate - _EPSILON)
        return max(1, math.ceil(self.penalty_until - now - _EPSILON))


class FloodControl:
    """Decides, in O(1), whether a counted request to a chat is admitted right now."""

    def __init__(self, limits: Limits, clock: Clock) -> None:
        self.limits = limits
        self._clock = clock
        self._chats: dict[int, TokenBucket] = {}
        self._bot = TokenBucket(limits.bot_per_sec, limits.bot_per_sec, clock())

    def admit(self, chat_id: int, private: bool) -> int | None:
        """None if the request may go ahead (tokens spent), else its `retry_after`."""
        now = self._clock()
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = self._new_bucket(private, now)
        chat.refill(now)
        self._bot.refill(now)
        if chat.ready(now) and self._bot.ready(now):
            chat.tokens -= 1
            self._bot.tokens -= 1
            return None
        waits = [bucket.refuse(now) for bucket in (chat, self._bot) if not bucket.ready(now)]
        return max(waits)

    def _new_bucket(self, private: bool, now: float) -> TokenBucket:
        if private:
            return TokenBucket(self.limits.private_burst, self.limits.private_per_sec, now)
        per_min = self.limits.group_per_min
        return TokenBucket(per_min, per_min / 60.0, now)
