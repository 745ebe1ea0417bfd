"""A faithful fake of the Telegram Bot API, for end-to-end tests and benchmarks.

Usage::

    async with FakeTelegram(token="123:ABC", bot_username="phi4_test_bot") as tg:
        tg.url                                   # TELEGRAM_API_URL for the bot
        alice = tg.private_user(42, "Alice")
        tg.send_text(alice.chat, alice, "hello")  # queues an update for getUpdates
        await tg.wait_until(lambda: tg.messages(alice.chat.id), timeout=10)
        tg.text_of(alice.chat.id)

What it enforces (and where): message text and entity rules (`text`), parse_mode markup
(`markup`), flood limits (`limits`), update delivery and 409 conflicts (`updates`).
"""

from __future__ import annotations

from .errors import ApiError
from .limits import Limits, ManualClock, Window
from .server import FakeTelegram
from .state import BotMessage, Chat, ChatAction, Draft, SentDocument, User
from .stats import ChatRequest, Stats

__all__ = [
    "ApiError",
    "BotMessage",
    "Chat",
    "ChatAction",
    "ChatRequest",
    "Draft",
    "FakeTelegram",
    "Limits",
    "ManualClock",
    "SentDocument",
    "Stats",
    "User",
    "Window",
]
