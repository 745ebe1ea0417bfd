"""What the core needs from the chat platform, as protocols the Telegram adapter implements.

The pipeline streams an answer into an `AnswerView`, shows that it is typing, and has media
downloaded, without knowing how a chat platform does any of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from bot.conversation.turns import FetchedMedia, MediaRef, ReplyTarget


class AnswerView(Protocol):
    """One answer as the chat shows it, brought up to date as text arrives."""

    @property
    def text(self) -> str: ...

    @property
    def message_ids(self) -> list[int]: ...

    @property
    def answer_shown_at(self) -> float | None:
        """When (`time.monotonic()`) the chat first showed the answer; None until it has."""
        ...

    def append(self, chunk: str) -> None:
        """Add model text; the view decides when the chat is brought up to date."""
        ...

    async def show_status(self, text: str) -> None:
        """Show a status line (a queue position) while no answer text has arrived."""
        ...

    async def finish(self, *, note: str | None = None) -> list[int]:
        """Bring the chat to exactly the final text (plus `note`); the message ids shown."""
        ...

    async def fail(self, user_message: str) -> list[int]:
        """End the answer with an error sentence, keeping any text already shown."""
        ...


class ChatReplies(Protocol):
    """Opens answers, sends short messages and shows typing indicators in chats."""

    def open_answer(
        self,
        target: ReplyTarget,
        *,
        drafts: bool = True,
        controls: bool = False,
        take_over: Sequence[int] = (),
    ) -> AnswerView:
        """A fresh view for one answer; `drafts` allows draft streaming where configured,
        `controls` offers Stop while it is written and Regenerate once it is the newest
        finished answer, `take_over` names an earlier answer's messages to rewrite."""
        ...

    async def say(self, target: ReplyTarget, text: str) -> list[int]:
        """Send a short message of the bot's own (a notice, a refusal) in the language of
        `target`; the ids of the messages sent."""
        ...

    async def offer_continue(self, target: ReplyTarget, message_id: int) -> None:
        """Offer Continue (besides Regenerate) under an answer the model's length limit cut."""
        ...

    def typing(self, target: ReplyTarget) -> AbstractAsyncContextManager[None]:
        """Show "typing…" in the chat while the block runs."""
        ...


class MediaDownloader(Protocol):
    """Fetches a turn's media and prepares it for the model: checked images, decoded audio,
    video frames and sound, and documents read as text."""

    async def fetch(self, refs: Sequence[MediaRef]) -> FetchedMedia: ...


class ChatSettings(Protocol):
    """The per-chat settings the store keeps (`Store.get_setting` and `set_setting`)."""

    async def get_setting(self, chat_id: int, name: str) -> str | None: ...

    async def set_setting(self, chat_id: int, name: str, value: str | None) -> None: ...
