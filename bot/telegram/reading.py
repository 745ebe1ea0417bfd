"""Reads one Telegram message (or an album of them) into the core's `IncomingTurn`, once."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import Message

from bot.conversation.errors import InputTooLong, TurnRejected, UnsupportedMessage
from bot.conversation.turns import IncomingTurn, MediaRef, ReplyTarget
from bot.telegram.downloads import media_of
from bot.telegram.triggers import (
    BotIdentity,
    conversation_key,
    display_name,
    is_group,
    replies_to_bot,
    strip_mention,
)


def turn_from_messages(
    messages: Sequence[Message],
    bot: BotIdentity,
    *,
    max_input_chars: int,
    text_override: str | None = None,
) -> IncomingTurn:
    """One turn: the text (mention removed in groups), the media of every message, and,
    when the message replies to someone else's message, that message quoted with its media,
    so "@bot what does this say?" under a photo asks about the photo."""
    first = messages[0]
    group = is_group(first)
    text = text_override
    if text is None:
        text = next((m.text or m.caption for m in messages if m.text or m.caption), "") or ""
    if group:
        text = strip_mention(text, bot)
    rejection: TurnRejected | None = None
    media: list[MediaRef] = []
    for message in messages:
        try:
            media += media_of(message)
        except UnsupportedMessage as exc:
            rejection = exc
    replied = first.reply_to_message
    quoting = (
        replied is not None
        and not replies_to_bot(first, bot)
        and not (first.is_topic_message and replied.message_id == first.message_thread_id)
    )
    if quoting and replied is not None:
        quoted = replied.text or replied.caption or ""
        author = display_name(replied) or "Someone"
        if quoted:
            text = f'{author} wrote: "{quoted}"\n\n{text}'.strip()
        try:
            media = media_of(replied) + media
        except UnsupportedMessage:
            pass
    if rejection is None and len(text) > max_input_chars:
        rejection = InputTooLong(
            f"That message is {len(text)} characters long; I read at most {max_input_chars}."
        )
    return IncomingTurn(
        target=ReplyTarget(conversation_key(first), group),
        text=text,
        message_id=first.message_id,
        sender_id=first.from_user.id if first.from_user else None,
        sender_name=display_name(first),
        media=tuple(media),
        rejection=rejection,
    )
