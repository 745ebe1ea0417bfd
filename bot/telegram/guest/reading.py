"""Reads a guest summon into the core's `IncomingTurn`, once: the question, and the message
it replies to as context."""

from __future__ import annotations

from telegram import Message

from bot.conversation.errors import InputTooLong, TurnRejected, UnsupportedMessage
from bot.conversation.turns import GuestPlace, IncomingTurn, MediaRef, ReplyTarget, guest_key
from bot.media.sticker import sticker_text
from bot.shared import Sentence
from bot.telegram.downloads import media_of
from bot.telegram.triggers import BotIdentity, display_name, language_of, strip_mention


def guest_turn(message: Message, bot: BotIdentity, *, max_input_chars: int) -> IncomingTurn:
    """One summon as a turn of its caller's guest conversation in that chat.

    The bot's mention is taken out of the question. A summon replying to the bot's own
    guest answer to the same caller continues that conversation; any other summon starts
    a fresh one, with the message it replies to as context: its text quoted with its
    author's name, its photo, voice note, audio, video or document read as if it had been
    sent to the bot in a private chat (same limits, same refusals).
    """
    caller = message.from_user
    assert caller is not None  # guest summons always come from a user
    text = strip_mention(message.text or message.caption or "", bot)
    replied = message.reply_to_message
    continues = replied is not None and answers_caller(replied, bot, caller.id)
    media: list[MediaRef] = []
    rejection: TurnRejected | None = None
    sources = [message] if replied is None or continues else [replied, message]
    for source in sources:
        try:
            media += media_of(source)
        except UnsupportedMessage as exc:
            rejection = exc
    if replied is not None and not continues:
        quoted = replied.text or replied.caption or ""
        if replied.sticker is not None:
            quoted = sticker_text(replied.sticker.emoji)
        if quoted:
            who = display_name(replied) or "Someone"
            text = f'{who} wrote: "{quoted}"\n\n{text}'.strip()
    if rejection is None and len(text) > max_input_chars:
        rejection = InputTooLong(
            Sentence(
                "That message is {length} characters long; I read at most {most}.",
                length=len(text),
                most=max_input_chars,
            )
        )
    place = GuestPlace(message.chat_id, caller.id, message.guest_query_id)
    return IncomingTurn(
        target=ReplyTarget(
            guest_key(message.chat_id, caller.id),
            True,
            message.message_id,
            language_of(message),
            place,
        ),
        text=text,
        message_id=message.message_id,
        sender_id=caller.id,
        sender_name=display_name(message),
        media=tuple(media),
        rejection=rejection,
        fresh=not continues,
    )


def answers_caller(replied: Message, bot: BotIdentity, caller_id: int) -> bool:
    """Whether `replied` is the bot's guest answer to `caller_id` (Telegram marks a guest
    bot's message with the user whose summon it answers)."""
    author, summoner = replied.from_user, replied.guest_bot_caller_user
    return (
        author is not None
        and author.id == bot.id
        and summoner is not None
        and summoner.id == caller_id
    )
