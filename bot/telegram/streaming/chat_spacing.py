"""Each chat's spacing in the request budget: when it may be served next, and when it was last.

In one private chat two requests go at least `private` seconds apart, in one group at least
`group`. A slot may be borrowed ahead of the spacing (the typing indicator's), to be paid
back by the request after next. Requests Telegram counts against the bot alone share one
lane (`BOT_ONLY`) with no spacing. Chats idle for a while are forgotten: their spacing has
long run out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

BOT_ONLY = 0
"""The lane of requests charged to the bot alone; no Telegram chat has id 0."""
_FORGET_AFTER = 120.0
"""Chat records idle this long are forgotten; they hold no reservation any more."""


@dataclass
class ChatPace:
    """One chat's spacing: when it may be served next, and when it was served last (the
    number of the grant, for serving the chat served least recently first).

    `borrowed_at` is when a slot was taken ahead of the spacing, to be paid back by the
    request after next.
    """

    interval: float
    next_free: float = -math.inf
    last_served: int = -1
    borrowed_at: float | None = None

    def take(self, now: float, grant: int) -> None:
        """The chat's next slot is granted at `now`, as grant number `grant`."""
        self.next_free = now + self.interval
        if self.borrowed_at is not None:  # the borrowed slot is paid back now
            self.next_free = max(now, self.borrowed_at + self.interval) + self.interval
            self.borrowed_at = None
        self.last_served = grant

    def borrow(self, now: float, grant: int) -> None:
        """A slot is granted at `now` ahead of the spacing, as grant number `grant`."""
        self.borrowed_at = now
        self.last_served = grant

    def hand_back(self, granted_at: float, last_served: int) -> None:
        """Undo the grant at `granted_at`, which was never used: the chat is free again
        unless a 429 pushed it further, and counts as served when it was before."""
        if self.next_free == granted_at + self.interval:
            self.next_free = granted_at
        self.last_served = last_served


class ChatPaces:
    """The spacing of every chat the budget served lately."""

    def __init__(self, private: float, group: float, now: float) -> None:
        self._private = private
        self._group = group
        self._paces: dict[int, ChatPace] = {}
        self._forget_at = now + _FORGET_AFTER

    def of(self, chat_id: int | None, *, is_group: bool) -> ChatPace:
        """The chat's spacing (`None`: the bot's own lane), new if the chat has none."""
        if chat_id is None:
            chat_id = BOT_ONLY
        pace = self._paces.get(chat_id)
        if pace is None:
            if chat_id == BOT_ONLY:
                interval = 0.0
            else:
                interval = self._group if is_group else self._private
            pace = self._paces[chat_id] = ChatPace(interval)
        return pace

    def get(self, chat_id: int) -> ChatPace | None:
        return self._paces.get(chat_id)

    def __getitem__(self, chat_id: int) -> ChatPace:
        return self._paces[chat_id]

    def forget_idle(self, now: float, waiting: Callable[[], set[int]]) -> None:
        """Every `_FORGET_AFTER` seconds, drop the chats not served for that long, except
        those `waiting()` names."""
        if now < self._forget_at:
            return
        kept = waiting()
        for chat_id in [
            chat_id
            for chat_id, pace in self._paces.items()
            if pace.next_free < now - _FORGET_AFTER and chat_id not in kept
        ]:
            del self._paces[chat_id]
        self._forget_at = now + _FORGET_AFTER
