"""The values a Telegram message is read into once, at the door, and handed down from there."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bot.shared import MediaForm, MediaKind, UserFacingError
from storage import ConversationKey, NewAttachment


@dataclass(frozen=True, slots=True)
class GuestPlace:
    """Where a guest answer goes in a chat the bot is not a member of: the one message a
    summon may be answered with (Telegram's guest mode).

    The summon's `query_id` answers it once; from then on the message is edited by its
    `inline_message_id` (known at once for a message that exists, such as one whose
    Regenerate button was pressed). Nothing else can be sent into such a chat.
    """

    chat_id: int
    caller_id: int
    query_id: str | None = None
    inline_message_id: str | None = None


def guest_key(chat_id: int, caller_id: int) -> ConversationKey:
    """The conversation of one caller's summons in one chat.

    Guest conversations are per caller, so people summoning the bot in the same chat do not
    share context. Forum topics use positive thread ids, so a negative one (minus the
    caller's user id) never meets a topic, nor the chat's own conversation.
    """
    return ConversationKey(chat_id, -caller_id)


def guest_caller(key: ConversationKey) -> int | None:
    """The caller whose guest conversation `key` is; None for a chat's or a topic's."""
    if key.thread_id is None or key.thread_id >= 0:
        return None
    return -key.thread_id


def guest_message_setting(caller_id: int) -> str:
    """The chat setting that holds the `inline_message_id` of `caller_id`'s newest guest
    answer in a chat, so an answer cut off by a crash can be marked in its message."""
    return f"guest_message:{caller_id}"


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Where an answer goes: the conversation, whether it is a group, the message replied to,
    and the language of the person it answers (a Telegram `language_code`; None: English).

    Groups get slower pacing and sender names in the prompt; private chats may stream as
    drafts; the bot's own sentences are shown in `language`. Built once when a message is
    read, so no code below recomputes it.
    """

    key: ConversationKey
    is_group: bool
    reply_to: int | None = None
    language: str | None = None
    guest: GuestPlace | None = None
    """Set for an answer in guest mode: it goes into that guest message, paced like a group's."""

    @classmethod
    def for_stored(cls, key: ConversationKey, reply_to: int | None) -> ReplyTarget:
        """A target for a turn read back from the database, where only the key is known.

        Telegram gives private chats the user's (positive) id and groups, supergroups and
        channels negative ids, so the sign of the chat id tells which it is.
        """
        return cls(key, key.chat_id < 0, reply_to)

    def replying_to(self, message_id: int | None) -> ReplyTarget:
        return ReplyTarget(self.key, self.is_group, message_id, self.language, self.guest)


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A file of a message, known before it is downloaded.

    `kind` is the media the backend must take for it (None: it becomes text only, as a text
    file does); `form` says how it is prepared (a video gives frames and sound), and is
    `kind` itself for plain images and audio.
    """

    kind: MediaKind | None
    file_id: str
    file_size: int | None
    mime_type: str | None
    filename: str
    duration: float | None = None
    form: MediaForm | None = None

    @property
    def how(self) -> MediaForm:
        return self.form or self.kind or "text"


@dataclass(frozen=True, slots=True)
class FetchedMedia:
    """A turn's files made ready for the model: attachments, and documents read as text."""

    attachments: tuple[NewAttachment, ...] = ()
    text: str = ""

    def __add__(self, other: FetchedMedia) -> FetchedMedia:
        text = "\n\n".join(t for t in (self.text, other.text) if t)
        return FetchedMedia(self.attachments + other.attachments, text)


@dataclass(frozen=True, slots=True)
class IncomingTurn:
    """A user's message as the core needs it, with its media not yet downloaded."""

    target: ReplyTarget
    text: str
    message_id: int
    sender_id: int | None
    sender_name: str | None
    media: tuple[MediaRef, ...] = ()
    rejection: UserFacingError | None = None
    # Media of the message replied to: context, taken along when it can still be downloaded.
    context_media: tuple[MediaRef, ...] = ()
    # Start a new conversation before storing this turn (a guest summon that does not
    # reply to the bot's earlier guest answer starts afresh).
    fresh: bool = False
    received_at: float = field(default_factory=time.monotonic, compare=False)  # monotonic

    @property
    def key(self) -> ConversationKey:
        return self.target.key

    @property
    def is_group(self) -> bool:
        return self.target.is_group
