"""Reads one Telegram message (or an album of them) into the core's `IncomingTurn`, once."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import Message

from bot.conversation.errors import InputTooLong, TurnRejected, UnsupportedMessage
from bot.conversation.turns import IncomingTurn, MediaRef, ReplyTarget
from bot.media.sticker import sticker_text
from bot.shared import Sentence
from bot.telegram.downloads import media_of
from bot.telegram.triggers import (
    BotIdentity,
    conversation_key,
    display_name,
    is_group,
    language_of,
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
    when the message replies to another, that message quoted with its media as context, so
    "@bot what does this say?" under a photo asks about the photo. In groups a reply to the
    bot is not quoted (it is how people address it); in private chats every reply quotes,
    the bot's messages and the user's own alike."""
    first = messages[0]
    group = is_group(first)
    text = text_override
    if text is None:
        text = next((m.text or m.caption for m in messages if m.text or m.caption), "") or ""
    if group:
        text = strip_mention(text, bot)
    stickers = [sticker_text(m.sticker.emoji) for m in messages if m.sticker is not None]
    text = " ".join([text, *stickers]).strip()
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
        and (not group or not replies_to_bot(first, bot))
        and not (first.is_topic_message and replied.message_id == first.message_thread_id)
    )
    context: list[MediaRef] = []
    if quoting and replied is not None:
        quoted = replied.text or replied.caption or ""
        if replied.sticker is not None:
            quoted = sticker_text(replied.sticker.emoji)
        if quoted:
            text = f'{_quoting(replied, bot, group=group)} "{quoted}"\n\n{text}'.strip()
        try:
            context = media_of(replied)
        except UnsupportedMessage:
            pass
    if rejection is None:
        rejection = too_long(text, max_input_chars)
    return IncomingTurn(
        target=ReplyTarget(conversation_key(first), group, language=language_of(first)),
        text=text,
        message_id=first.message_id,
        sender_id=first.from_user.id if first.from_user else None,
        sender_name=display_name(first),
        media=tuple(media),
        rejection=rejection,
        context_media=tuple(context),
    )


def too_long(text: str, max_input_chars: int) -> InputTooLong | None:
    """The refusal of a question longer than the bot reads, or None."""
    if len(text) <= max_input_chars:
        return None
    return InputTooLong(
        Sentence(
            "That message is {length} characters long; I read at most {most}.",
            length=len(text),
            most=max_input_chars,
        )
    )


def _quoting(replied: Message, bot: BotIdentity, *, group: bool) -> str:
    """How the model is told whose words are quoted: a name in groups; in a private chat,
    its own earlier answer or the user's earlier message."""
    if group:
        return f"{display_name(replied) or 'Someone'} wrote:"
    if replied.from_user is not None and replied.from_user.id == bot.id:
        return "Replying to your earlier message:"
    return "Replying to my earlier message:"
