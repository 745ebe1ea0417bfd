"""The bot-wide part of the request budget: a one-second window, and the 429s that hold it.

Telegram allows a bot about 30 requests in any second. At most `rate / (1 + margin)` of
them (28) are granted in any one-second window, so a burst of first messages leaves at once
instead of queueing behind an even spacing, and intermediate edits may fill only part of it
(24), so a new answer always finds a slot. A request counts against the window from its
grant until one second after it is released, so requests that reach Telegram late (a busy
event loop, a slow connection) can never bunch up with the next second's. 429s for several
chats within a short time mean the bot-wide limit was met: every chat then waits them out.
"""

from __future__ import annotations

import math
from collections import deque

from bot.telegram.streaming.clock import EPSILON

# 429s for this many different chats within `_BOT_WIDE_WINDOW` seconds mean a bot-wide limit.
_BOT_WIDE_CHATS = 3
_BOT_WIDE_WINDOW = 2.0
# The bot-wide limit is counted over sliding windows of this many seconds.
_WINDOW = 1.0
# A slot never released within this many seconds no longer holds the bot-wide budget.
_STUCK = 60.0


class BotWindow:
    """Requests granted bot-wide, by time, and when the bot as a whole may send next."""

    def __init__(self, rate: float, margin: float) -> None:
        self._rate = rate
        self._margin = margin
        self.cap = 1
        """Requests allowed in any one-second window."""
        self.edit_cap = 1
        """How many of those intermediate edits may fill."""
        self.share(1)
        self._in_flight: deque[float] = deque()  # grant times of requests not yet released
        self._window: deque[float] = deque()  # release times within the last second
        self._next = -math.inf
        self._penalties: deque[tuple[float, int]] = deque()
        self._penalty_until = -math.inf

    def share(self, instances: int) -> None:
        """Keep an equal part of the rate with `instances` processes sending for the bot."""
        rate = self._rate / max(1, instances)
        self.cap = max(1, math.floor(rate / (1 + self._margin)))
        self.edit_cap = max(1, self.cap - max(1, self.cap // 7))

    def grant(self, now: float) -> None:
        """A request was granted at `now`; it counts until one second after its release."""
        self._in_flight.append(now)

    def release(self, now: float) -> None:
        """A granted request got its answer (or was never sent)."""
        if self._in_flight:
            self._in_flight.popleft()
        self._window.append(now)

    def hand_back(self) -> None:
        """Undo the latest grant, which was never used."""
        if self._in_flight:
            self._in_flight.pop()

    def used(self, now: float) -> int:
        """Requests counted against the window at `now` (in flight or recent)."""
        since = now - _WINDOW
        return len(self._in_flight) + sum(1 for t in self._window if t > since)

    def free_at(self, now: float, *, edit: bool) -> float:
        """When the bot next allows a request (an intermediate `edit` or another): after
        any bot-wide penalty, and once the one-second window has room."""
        while self._window and self._window[0] <= now - _WINDOW + EPSILON:
            self._window.popleft()
        while self._in_flight and self._in_flight[0] < now - _STUCK:
            self._in_flight.popleft()
        cap = self.edit_cap if edit else self.cap
        excess = len(self._in_flight) + len(self._window) - cap
        if excess < 0:
            return self._next
        if excess < len(self._window):
            return max(self._next, self._window[excess] + _WINDOW)
        if self._in_flight:  # only releases free the budget; until then, a stuck guard
            return max(self._next, self._in_flight[0] + _STUCK)
        return self._next

    def penalize(self, now: float, chat_id: int, until: float, *, bot_wide: bool | None) -> None:
        """Telegram answered 429 for `chat_id` at `now`, to wait until `until`: hold every
        chat as well when `bot_wide`, or, when it is None, when several chats got one
        within a short time (each chat on its own was paced, so the bot's limit was met)."""
        self._penalty_until = max(self._penalty_until, until)
        self._penalties.append((now, chat_id))
        while self._penalties and self._penalties[0][0] < now - _BOT_WIDE_WINDOW:
            self._penalties.popleft()
        if bot_wide is None:
            bot_wide = len({chat for _, chat in self._penalties}) >= _BOT_WIDE_CHATS
        if bot_wide:
            self._next = max(self._next, until)

    def penalty_remaining(self, now: float) -> float:
        """Seconds until the longest 429 penalty still running is over; 0 when none is."""
        return max(0.0, self._penalty_until - now)
