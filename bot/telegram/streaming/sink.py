"""The streamer's only door to Telegram: send, edit, draft and delete, with errors it can act on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    MessageEntity,
    ReplyParameters,
)
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from bot.telegram.streaming.buttons import NO_BUTTONS, Keyboard
from bot.telegram.streaming.limiter import retry_after_seconds

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class SinkError(Exception):
    """Telegram refused a request for a reason the streamer cannot fix by retrying."""


class FloodWait(SinkError):
    """429: nothing may be sent to this chat (or by this bot) for `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"flood control: retry after {retry_after:g} s")
        self.retry_after = retry_after


class NotModified(SinkError):
    """The edit asked for the content the message already has; harmless."""


class EntitiesRejected(SinkError):
    """Telegram could not place the entities; the text alone would be accepted."""


class MessageGone(SinkError):
    """The message to edit or delete no longer exists (the user deleted it)."""


class TransientSendError(SinkError):
    """A network failure, timeout or server error: the same request may succeed later."""


class MessageSink(Protocol):
    """Where a reply's messages go; Telegram in production, memory in tests."""

    async def send(
        self,
        text: str,
        entities: Sequence[MessageEntity],
        *,
        reply_to: int | None,
        buttons: Keyboard = NO_BUTTONS,
    ) -> int:
        """Send a new message (with `buttons` under it) and return its id."""
        ...

    async def edit(
        self,
        message_id: int,
        text: str,
        entities: Sequence[MessageEntity],
        *,
        buttons: Keyboard = NO_BUTTONS,
    ) -> None:
        """Replace a message's text, entities and buttons (none given: none left)."""
        ...

    async def draft(self, draft_id: int, text: str, entities: Sequence[MessageEntity]) -> None:
        """Show an ephemeral, animated draft (private chats only)."""
        ...

    async def delete(self, message_id: int) -> None:
        """Remove a message the final answer no longer needs."""
        ...


class TelegramSink:
    """A `MessageSink` for one chat (and forum topic) through python-telegram-bot's `Bot`.

    Answers are sent with entities only (never `parse_mode`), without link previews, and
    as replies that still go out when the replied-to message was deleted.
    """

    def __init__(self, bot: Bot, chat_id: int, message_thread_id: int | None = None) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.message_thread_id = message_thread_id

    async def send(
        self,
        text: str,
        entities: Sequence[MessageEntity],
        *,
        reply_to: int | None,
        buttons: Keyboard = NO_BUTTONS,
    ) -> int:
        reply = None
        if reply_to is not None:
            reply = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
        try:
            message = await self.bot.send_message(
                self.chat_id,
                text,
                entities=list(entities) or None,
                parse_mode=None,
                message_thread_id=self.message_thread_id,
                reply_parameters=reply,
                link_preview_options=NO_PREVIEW,
                reply_markup=markup(buttons),
            )
        except TelegramError as exc:
            raise translate(exc) from exc
        return message.message_id

    async def edit(
        self,
        message_id: int,
        text: str,
        entities: Sequence[MessageEntity],
        *,
        buttons: Keyboard = NO_BUTTONS,
    ) -> None:
        try:
            await self.bot.edit_message_text(
                text,
                chat_id=self.chat_id,
                message_id=message_id,
                entities=list(entities) or None,
                parse_mode=None,
                link_preview_options=NO_PREVIEW,
                reply_markup=markup(buttons),
            )
        except TelegramError as exc:
            raise translate(exc) from exc

    async def edit_buttons(self, message_id: int, buttons: Keyboard) -> None:
        """Change only the buttons under a message (none given: remove them)."""
        try:
            await self.bot.edit_message_reply_markup(
                chat_id=self.chat_id, message_id=message_id, reply_markup=markup(buttons)
            )
        except TelegramError as exc:
            raise translate(exc) from exc

    async def draft(self, draft_id: int, text: str, entities: Sequence[MessageEntity]) -> None:
        try:
            await self.bot.send_message_draft(
                self.chat_id,
                draft_id,
                text,
                message_thread_id=self.message_thread_id,
                parse_mode=None,
                entities=list(entities) or None,
            )
        except TelegramError as exc:
            raise translate(exc) from exc

    async def delete(self, message_id: int) -> None:
        try:
            await self.bot.delete_message(self.chat_id, message_id)
        except TelegramError as exc:
            raise translate(exc) from exc


def markup(buttons: Keyboard) -> InlineKeyboardMarkup | None:
    """One row of inline buttons, or None (Telegram then shows none)."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in buttons]]
    )


def translate(exc: TelegramError) -> SinkError:
    """The streamer's view of a python-telegram-bot error."""
    if isinstance(exc, RetryAfter):
        return FloodWait(retry_after_seconds(exc))
    if isinstance(exc, BadRequest):
        text = exc.message.lower()
        if "message is not modified" in text:
            return NotModified(exc.message)
        if "can't parse entities" in text or "can't find end of" in text:
            return EntitiesRejected(exc.message)
        if "message to edit not found" in text or "message to delete not found" in text:
            return MessageGone(exc.message)
        if "message_id_invalid" in text:
            return MessageGone(exc.message)
        return SinkError(exc.message)
    if isinstance(exc, NetworkError):
        # TimedOut is a NetworkError; PTB raises NetworkError for 5xx answers as well.
        return TransientSendError(exc.message)
    return SinkError(exc.message)
