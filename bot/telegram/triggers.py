"""Small predicates deciding whether a message is addressed to the bot."""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import Chat, Message, MessageEntity

from bot.conversation.turns import ReplyTarget
from storage import ConversationKey


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who the bot is, as learned from `getMe` at start."""

    id: int
    username: str

    @property
    def mention(self) -> str:
        return f"@{self.username}"


def is_private(message: Message) -> bool:
    return message.chat.type == Chat.PRIVATE


def is_group(message: Message) -> bool:
    return message.chat.type in (Chat.GROUP, Chat.SUPERGROUP)


def conversation_key(message: Message) -> ConversationKey:
    """A forum topic is its own conversation; anything else is the chat's."""
    thread = message.message_thread_id if message.is_topic_message else None
    return ConversationKey(message.chat_id, thread)


def reply_target(message: Message) -> ReplyTarget:
    """Where answers to `message` go: its conversation, replying to it, in its sender's
    language."""
    return ReplyTarget(
        conversation_key(message), is_group(message), message.message_id, language_of(message)
    )


def language_of(message: Message) -> str | None:
    """The sender's Telegram `language_code`, if Telegram told it."""
    return message.from_user.language_code if message.from_user else None


def _all_entities(message: Message) -> list[tuple[MessageEntity, str]]:
    """Entities of the text and of the caption, with the string they belong to.

    PTB's `filters.Mention` looks only at `entities`; a captioned photo carries its
    mention in `caption_entities`, so both are read here.
    """
    found: list[tuple[MessageEntity, str]] = []
    if message.text:
        found += [(e, message.text) for e in message.entities]
    if message.caption:
        found += [(e, message.caption) for e in message.caption_entities]
    return found


def mentions_bot(message: Message, bot: BotIdentity) -> bool:
    """True for an `@username` mention (any case) or a text_mention of the bot user."""
    for entity, _ in _all_entities(message):
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot.id:
            return True
    for entity_text in _mention_texts(message):
        if entity_text.lower() == bot.mention.lower():
            return True
    return False


def _mention_texts(message: Message) -> list[str]:
    texts: list[str] = []
    if message.text:
        texts += list(message.parse_entities([MessageEntity.MENTION]).values())
    if message.caption:
        texts += list(message.parse_caption_entities([MessageEntity.MENTION]).values())
    return texts


def replies_to_bot(message: Message, bot: BotIdentity) -> bool:
    """A reply to one of the bot's own messages (not a reply inside a forum topic root)."""
    replied = message.reply_to_message
    if replied is None or replied.from_user is None:
        return False
    if message.is_topic_message and replied.message_id == message.message_thread_id:
        return False  # every message in a topic "replies" to the topic's first message
    return replied.from_user.id == bot.id


def strip_mention(text: str, bot: BotIdentity) -> str:
    """Remove the bot's @username from a message so the model reads only the question."""
    pattern = re.compile(rf"(?<!\w){re.escape(bot.mention)}\b[,:]?", re.IGNORECASE)
    return re.sub(r"[ \t]{2,}", " ", pattern.sub("", text)).strip()


def display_name(message: Message) -> str | None:
    """The sender's name as the model sees it in groups ("Anna", or a channel's title)."""
    if message.sender_chat is not None:
        return message.sender_chat.title or message.sender_chat.username
    user = message.from_user
    if user is None:
        return None
    return user.full_name or user.username
