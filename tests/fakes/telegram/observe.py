"""The test's view of what the bot did: its messages, drafts, files, actions and commands."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from .keyboards import CallbackPress
from .state import BotMessage, Chat, ChatAction, Draft, SentDocument, World
from .stats import Stats


class ChatObserver:
    """Mixed into `FakeTelegram`: read-only views plus `wait_until` for state changes."""

    world: World
    stats: Stats

    def chat(self, chat_id: int) -> Chat:
        """The chat with everything stored about it (KeyError if the test never created it)."""
        return self.world.chats[chat_id]

    def messages(
        self, chat_id: int, thread_id: int | None = None, *, include_deleted: bool = False
    ) -> list[BotMessage]:
        """The bot's text messages in a chat, oldest first, as they stand now.

        `thread_id=None` means every thread; deleted messages are left out unless asked for.
        """
        chat = self.world.chats.get(chat_id)
        if chat is None:
            return []
        return [
            m
            for m in chat.bot_messages
            if (thread_id is None or m.thread_id == thread_id)
            and (include_deleted or not m.deleted)
        ]

    def text_of(self, chat_id: int, thread_id: int | None = None, sep: str = "\n") -> str:
        """The current text of the bot's messages in a chat, joined with `sep`."""
        return sep.join(m.text for m in self.messages(chat_id, thread_id))

    def press(self, query_id: str) -> CallbackPress:
        """A button press and how the bot answered it (`answered`, `text`)."""
        press: CallbackPress = self.world.presses[query_id]
        return press

    @property
    def unanswered_presses(self) -> list[CallbackPress]:
        """Button presses the bot has not answered with answerCallbackQuery (yet)."""
        return [p for p in self.world.presses.values() if not p.answered]

    def drafts(self, chat_id: int) -> list[Draft]:
        chat = self.world.chats.get(chat_id)
        return list(chat.drafts) if chat else []

    def documents(self, chat_id: int) -> list[SentDocument]:
        chat = self.world.chats.get(chat_id)
        return list(chat.documents) if chat else []

    def chat_actions(self, chat_id: int) -> list[ChatAction]:
        chat = self.world.chats.get(chat_id)
        return list(chat.actions) if chat else []

    @property
    def commands(self) -> list[dict[str, str]]:
        """The commands set for the default scope and no language (what users see in the menu)."""
        return list(self.world.commands.get(("default", ""), []))

    def commands_for(self, scope: str = "default", language_code: str = "") -> list[dict[str, str]]:
        return list(self.world.commands.get((scope, language_code), []))

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by the bot (0 once it has caught up)."""
        return len(self.world.updates.pending)

    @property
    def webhook(self) -> dict[str, object]:
        """What setWebhook recorded (url, secret_token, ...); empty when none is set."""
        return dict(self.world.webhook)

    async def wait_until(
        self, predicate: Callable[[], object], timeout: float = 5.0, what: str = ""
    ) -> None:
        """Return as soon as `predicate()` is true; re-checked after every state change.

        On timeout, raise AssertionError with a summary of every chat, so a failing test
        shows what the bot did instead of only that it did not do enough.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self.world.changed
            if predicate():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                label = what or getattr(predicate, "__name__", "condition")
                raise AssertionError(f"{label} not reached within {timeout} s\n{self.summary()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def summary(self, per_chat: int = 3) -> str:
        """A readable account of the fake's state: chats, last bot messages, counters."""
        lines = [
            f"pending updates: {self.pending_updates}; requests: {dict(self.stats.requests)}; "
            f"429s: {self.stats.flood_429}"
        ]
        for chat in self.world.chats.values():
            shown = [m for m in chat.bot_messages if not m.deleted]
            lines.append(
                f"chat {chat.id} ({chat.type}): {len(shown)} bot messages, "
                f"{len(chat.drafts)} drafts, {len(chat.documents)} documents, "
                f"429s {self.stats.flood_429_by_chat.get(chat.id, 0)}"
            )
            for message in shown[-per_chat:]:
                text = message.text if len(message.text) <= 120 else message.text[:117] + "..."
                lines.append(f"  #{message.message_id} ({message.edits} edits): {text!r}")
        return "\n".join(lines)
