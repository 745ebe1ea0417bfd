"""Telegram's flood control modelled as sliding windows per chat and for the whole bot.

The model (`Limits()` defaults are the documented Telegram figures, strictly read):

* a private chat takes about one message a second: at most 3 in any 1 s (a short burst)
  and at most 10 in any 10 s;
* a group or supergroup takes at most 20 in any 60 s;
* the bot as a whole sends at most 30 in any 1 s.

A counted request (see `COUNTED_METHODS`) is charged to its chat's windows and to the
bot's; `BOT_WIDE_METHODS` (and counted ones without a chat, such as edits of inline
messages) only to the bot's. A request that would overfill a window is refused with 429
and `retry_after` = the whole seconds until the window has room (at least 1), and that
span becomes a *penalty*: every request before it ends is refused as well and pushes the
end one request's share of the window further (1 s in a private chat, 3 s in a group, 1/30 s
for the bot), as Telegram does with a bot that keeps hammering. Refused
requests are not charged to the windows. An injected 429 (`FakeTelegram.fail_next`)
imposes its `retry_after` as a penalty the same way. A bot that honours `retry_after` is
never refused twice.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

COUNTED_METHODS = frozenset(
    {
        "sendmessage",
        "editmessagetext",
        "editmessagereplymarkup",
        "editmessagecaption",
        "sendmessagedraft",
        "senddocument",
        "deletemessage",
        "sendchataction",
    }
)
"""Methods charged to their chat and to the bot (lower-case, as the fake looks them up)."""
BOT_WIDE_METHODS = frozenset({"answercallbackquery", "answerguestquery", "answerinlinequery"})
"""Methods with no chat of their own, charged to the bot's window only."""
# Tolerance for float drift, so a bot waiting exactly `retry_after` is not refused again.
_EPSILON = 1e-9

Clock = Callable[[], float]


@dataclass(frozen=True)
class Window:
    """At most `count` counted requests in any span of `seconds`."""

    count: int
    seconds: float


@dataclass(frozen=True)
class Limits:
    """The flood limits to enforce; pass `limits=None` to the fake to disable them."""

    private: tuple[Window, ...] = (Window(3, 1.0), Window(10, 10.0))
    group: tuple[Window, ...] = (Window(20, 60.0),)
    bot: tuple[Window, ...] = (Window(30, 1.0),)


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


class SlidingWindows:
    """The admission times of one scope (a chat or the bot) checked against its windows."""

    __slots__ = ("penalty_until", "times", "windows")

    def __init__(self, windows: tuple[Window, ...]) -> None:
        self.windows = windows
        self.times: deque[float] = deque()  # admitted requests, oldest first
        self.penalty_until = -math.inf

    def wait(self, now: float) -> float:
        """Seconds until one more request fits every window and any penalty is over."""
        longest = max((w.seconds for w in self.windows), default=0.0)
        while self.times and self.times[0] <= now - longest + _EPSILON:
            self.times.popleft()
        wait = max(0.0, self.penalty_until - now)
        for window in self.windows:
            inside = [t for t in self.times if t > now - window.seconds + _EPSILON]
            if len(inside) >= window.count:
                # room comes back when the oldest request that overfills the window leaves it
                oldest = inside[len(inside) - window.count]
                wait = max(wait, oldest + window.seconds - now)
        return wait

    def penalize(self, now: float, seconds: float) -> None:
        self.penalty_until = max(self.penalty_until, now + seconds)

    def hammered(self, now: float) -> None:
        """A request arrived during the penalty: the penalty grows by one request's share
        of the strictest window."""
        self.penalty_until += max((w.seconds / w.count for w in self.windows), default=1.0)


class FloodControl:
    """Decides whether a counted request is admitted right now, and charges it if so."""

    def __init__(self, limits: Limits, clock: Clock) -> None:
        self.limits = limits
        self._clock = clock
        self._chats: dict[int, SlidingWindows] = {}
        self._bot = SlidingWindows(limits.bot)

    def admit(self, chat_id: int | None, private: bool = False) -> int | None:
        """None if the request may go ahead (it is charged), else its `retry_after`.

        `chat_id=None` is a request charged to the bot alone.
        """
        now = self._clock()
        scopes = [self._bot]
        if chat_id is not None:
            scopes.append(self._scope(chat_id, private))
        waits = [(scope, scope.wait(now)) for scope in scopes]
        if all(wait <= _EPSILON for _, wait in waits):
            for scope in scopes:
                scope.times.append(now)
            return None
        for scope, wait in waits:
            if wait <= _EPSILON:
                continue
            if scope.penalty_until > now + _EPSILON:
                scope.hammered(now)
            else:
                scope.penalize(now, math.ceil(wait - _EPSILON))
        return max(1, math.ceil(max(s.penalty_until for s, _ in waits) - now - _EPSILON))

    def penalize(self, chat_id: int | None, private: bool, seconds: float) -> None:
        """An injected 429: nothing more is admitted to the chat (or bot) for `seconds`."""
        scope = self._bot if chat_id is None else self._scope(chat_id, private)
        scope.penalize(self._clock(), seconds)

    def _scope(self, chat_id: int, private: bool) -> SlidingWindows:
        scope = self._chats.get(chat_id)
        if scope is None:
            windows = self.limits.private if private else self.limits.group
            scope = self._chats[chat_id] = SlidingWindows(windows)
        return scope
