"""Plain values that cross the storage boundary; no SQL types leak out of `storage/`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

# How long a claimed command is remembered (Telegram keeps an update for at most 24 hours).
COMMAND_CLAIM_DAYS = 2


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """A chat, or one forum topic of it (`thread_id`); each has its own conversation."""

    chat_id: int
    thread_id: int | None = None


class AnswerStatus(StrEnum):
    """Where an assistant turn ended, so a crash mid-answer leaves an honest record."""

    STREAMING = "streaming"
    COMPLETE = "complete"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"  # the process died while it was streaming
    REPLACED = "replaced"  # superseded by /retry; kept for audit, left out of history


@dataclass(frozen=True, slots=True)
class NewAttachment:
    """Media of a user turn as it arrives; stored once per content hash."""

    kind: Literal["image", "audio"]
    mime_type: str
    data: bytes
    filename: str
    telegram_file_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    """Media of a stored turn. `data` is None when the history left it out (media limit);
    `telegram_file_id` lets the bot send the file again without uploading it."""

    kind: Literal["image", "audio"]
    mime_type: str
    size: int
    filename: str
    sha256: str
    data: bytes | None
    telegram_file_id: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedTurn:
    """A user's turn as `record_user_turn` stored it, in its key's current conversation."""

    conversation_id: int
    user_turn_id: int


@dataclass(frozen=True, slots=True)
class AnswerCheckpoint:
    """A streaming answer's text so far and the messages showing it, as `update_answers`
    saves it."""

    answer_id: int
    text: str
    message_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class HistoryTurn:
    """One turn of the history the model sees, oldest first."""

    turn_id: int
    role: Literal["user", "assistant"]
    text: str
    sender_name: str | None
    attachments: tuple[StoredAttachment, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PromptInputs:
    """What a model request is built from, read in one operation: the chat's own system
    prompt (None when it has none) and the history, oldest first."""

    system_prompt: str | None
    history: list[HistoryTurn]


@dataclass(frozen=True, slots=True)
class PendingAnswer:
    """An answer left unfinished by a previous process, found at start-up."""

    key: ConversationKey
    user_turn_id: int
    assistant_turn_id: int | None
    reply_message_ids: tuple[int, ...]
    user_message_id: int | None = None  # the Telegram message the turn came from
    conversation_id: int | None = None


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A message kept while it waited to become a turn (`Store.hold_message`)."""

    chat_id: int
    message_id: int
    payload: str
    """Telegram's JSON of the message, as the bot received it."""


@dataclass(frozen=True, slots=True)
class ChatStats:
    """Usage figures of one chat, for the admin `/stats` command."""

    chat_id: int
    conversations: int
    user_turns: int
    assistant_turns: int
    failed_turns: int
    last_activity: datetime | None


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """A conversation's newest answer with the question it answers: what Regenerate redoes
    and who may ask for it."""

    answer_turn_id: int
    user_turn_id: int
    status: AnswerStatus
    message_ids: tuple[int, ...]
    user_message_id: int | None
    sender_id: int | None


@dataclass(frozen=True, slots=True)
class EditedTurn:
    """A stored user turn whose Telegram message was edited, as `edit_user_turn` left it."""

    conversation_id: int
    user_turn_id: int
    changed: bool  # the text differed from the stored one (an edit seen twice changes nothing)
    newest: bool  # no later user turn in its conversation
    answer_message_ids: tuple[int, ...]  # the messages of its newest answer, if any


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What one batch of retention removed; a count equal to `batch` means there may be more."""

    conversations: int
    media: int
    batch: int

    @property
    def more(self) -> bool:
        return self.conversations >= self.batch or self.media >= self.batch


@dataclass(frozen=True, slots=True)
class TableSize:
    """A table's rows, and its bytes on disk with its indexes (None where unknown)."""

    name: str
    rows: int
    size: int | None


@dataclass(frozen=True, slots=True)
class DatabaseStats:
    """What `phi4bot db stats` prints: the tables' sizes and the conversation untouched the
    longest (None in an empty database)."""

    engine: str
    tables: tuple[TableSize, ...]
    oldest_conversation: int | None
    oldest_chat: int | None
    oldest_touched: datetime | None
