"""The values a Telegram message is read into once, at the door, and handed down from there."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bot.shared import MediaForm, MediaKind, UserFacingError
from storage import ConversationKey, NewAttachment


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

    @classmethod
    def for_stored(cls, key: ConversationKey, reply_to: int | None) -> ReplyTarget:
        """A target for a turn read back from the database, where only the key is known.

        Telegram gives private chats the user's (positive) id and groups, supergroups and
        channels negative ids, so the sign of the chat id tells which it is.
        """
        return cls(key, key.chat_id < 0, reply_to)

    def replying_to(self, message_id: int | None) -> ReplyTarget:
        return ReplyTarget(self.key, self.is_group, message_id, self.language)


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
    received_at: float = field(default_factory=time.monotonic, compare=False)  # monotonic

    @property
    def key(self) -> ConversationKey:
        return self.target.key

    @property
    def is_group(self) -> bool:
        return self.target.is_group
