"""Who may use the bot where, and how much: allow-lists, admins and per-user limits."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.config import Settings
from bot.conversation.errors import RateLimited
from bot.shared.bounded import BoundedDict


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Allow-lists from the contract.

    `PHI4BOT_ALLOWED_USERS` limits who may talk to the bot anywhere; `PHI4BOT_ALLOWED_CHATS`
    limits which groups it speaks in, and a group listed there is open to all its members.
    Admins are always allowed.
    """

    allowed_users: frozenset[int]
    allowed_chats: frozenset[int]
    admins: frozenset[int]

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        return cls(settings.allowed_users, settings.allowed_chats, settings.admins)

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admins

    def chat_allowed(self, chat_id: int, *, private: bool) -> bool:
        """Whether the bot may say anything at all in this chat."""
        if private or not self.allowed_chats:
            return True
        return chat_id in self.allowed_chats

    def user_allowed(self, user_id: int | None, chat_id: int, *, private: bool) -> bool:
        if self.is_admin(user_id):
            return True
        if not self.chat_allowed(chat_id, private=private):
            return False
        if not self.allowed_users:
            return True
        if not private and chat_id in self.allowed_chats:
            return True
        return user_id is not None and user_id in self.allowed_users


REMEMBERED_USERS = 10_000
"""Users whose last minute is remembered; one quiet for a minute is forgotten anyway."""


@dataclass(slots=True)
class UserRateLimiter:
    """A sliding one-minute window per user; `per_minute == 0` turns it off.

    Only users who wrote within the last minute are remembered (at most `REMEMBERED_USERS`
    of them), so the limiter's memory does not grow with everyone who ever wrote.
    """

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    _seen: BoundedDict[int, deque[float]] = field(init=False)

    def __post_init__(self) -> None:
        self._seen = BoundedDict(REMEMBERED_USERS, ttl=60.0, clock=self.clock)

    def check(self, user_id: int) -> None:
        """Count one request, or raise `RateLimited` without counting it."""
        if self.per_minute <= 0:
            return
        now = self.clock()
        window = self._seen.get(user_id) or deque()
        while window and now - window[0] >= 60.0:
            window.popleft()
        if len(window) >= self.per_minute:
            wait = int(60.0 - (now - window[0])) + 1
            raise RateLimited(f"You are sending messages too quickly. Try again in {wait} s.")
        window.append(now)
        self._seen[user_id] = window  # written again: kept for another minute
