"""The async interface the bot uses to remember conversations; SQL stays behind it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from storage.coordination import Coordination
from storage.models import (
    AnswerCheckpoint,
    AnswerRecord,
    AnswerStatus,
    ChatStats,
    ConversationKey,
    DatabaseStats,
    EditedTurn,
    Forgotten,
    HeldMessage,
    HistoryTurn,
    NewAttachment,
    PendingAnswer,
    PromptInputs,
    RecordedTurn,
)


class Store(Protocol):
    """Conversations, turns, attachments, settings and idempotency for the bot."""

    async def open(self) -> None:
        """Connect and apply pending migrations; raise `StorageError` with a clear message."""

    async def close(self) -> None:
        """Wait for running operations, then close; closing twice is harmless."""

    def coordination(self) -> Coordination:
        """How this process takes turns with others sharing the database (see
        `storage.coordination`); one process alone on SQLite."""

    # conversations -------------------------------------------------------
    async def current_conversation(self, key: ConversationKey) -> int:
        """The id of the key's active conversation, created on first use."""

    async def new_conversation(self, key: ConversationKey) -> int:
        """Start a fresh conversation for the key; the old one is kept, not deleted."""

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup: its conversations, settings and idempotency keys
        follow it."""

    # settings ------------------------------------------------------------
    async def get_setting(self, chat_id: int, name: str) -> str | None: ...

    async def set_setting(self, chat_id: int, name: str, value: str | None) -> None:
        """`None` removes the setting (back to the default)."""

    # turns ---------------------------------------------------------------
    async def add_user_turn(
        self,
        conversation_id: int,
        *,
        text: str,
        chat_id: int,
        message_id: int | None,
        sender_id: int | None = None,
        sender_name: str | None = None,
        attachments: Sequence[NewAttachment] = (),
    ) -> int | None:
        """Store a user's turn; None if (chat_id, message_id) was stored before (idempotency).
        Raises `AttachmentTooLarge` before writing anything when an attachment is over the cap."""

    async def record_user_turn(
        self,
        key: ConversationKey,
        *,
        text: str,
        chat_id: int,
        message_id: int | None,
        sender_id: int | None = None,
        sender_name: str | None = None,
        attachments: Sequence[NewAttachment] = (),
        max_waiting: int | None = None,
    ) -> RecordedTurn | None:
        """`current_conversation` then `add_user_turn`, as one operation: under a flood every
        store call waits its turn, so an arriving message is recorded in one. The same rules
        as `add_user_turn`: None when (chat_id, message_id) was stored before, and
        `AttachmentTooLarge` before anything is written (a key's first conversation
        included).

        `max_waiting` caps the sender's turns waiting for an answer in the key's
        conversations, as counted in the database (`storage.waiting`): with that many
        waiting, `TooManyWaiting` is raised and nothing is written. Processes sharing the
        database pass it, since none of them sees every waiting turn in memory."""

    async def start_answer(self, conversation_id: int, user_turn_id: int) -> int:
        """Record an assistant turn in status `streaming`; returns its id."""

    async def update_answers(self, checkpoints: Sequence[AnswerCheckpoint]) -> None:
        """Checkpoint streaming answers (text so far, messages showing it), so a crash leaves
        each partial answer and the messages to fix; all in one transaction, so hundreds of
        answers streaming at once are saved by one write, not hundreds. Answers no longer
        streaming are left as they are, so a batch taken before an answer finished cannot
        undo its end whenever it lands."""

    async def finish_answer(
        self,
        turn_id: int,
        *,
        text: str,
        status: AnswerStatus,
        message_ids: Sequence[int] = (),
        error: str | None = None,
    ) -> None:
        """How the answer ended (complete, failed, stopped), its final text and the ids of
        the bot's messages that show it; `error` says why it failed."""

    async def history(
        self,
        conversation_id: int,
        *,
        char_budget: int,
        media_limit: int,
        until_turn_id: int | None = None,
    ) -> list[HistoryTurn]:
        """Turns for the model, oldest first: whole turns dropped from the oldest to fit
        `char_budget` (the newest turn is kept even alone over it); only the newest
        `media_limit` attachments carry their bytes. Only complete and stopped answers are
        included: failed, interrupted, replaced and still-streaming ones are left out.
        The system prompt is not a turn: the caller adds it, so trimming never touches it.
        With `until_turn_id`, the history ends at that turn: turns stored after it (messages
        waiting behind the answer being written) are not its context."""

    async def prompt_inputs(
        self,
        conversation_id: int,
        *,
        chat_id: int,
        prompt_setting: str,
        char_budget: int,
        media_limit: int,
        until_turn_id: int | None = None,
    ) -> PromptInputs:
        """What the model request is built from, in one operation: the chat's setting named
        `prompt_setting` (its own system prompt) and `history(...)` with these arguments."""

    async def last_user_turn(self, conversation_id: int) -> HistoryTurn | None:
        """The newest user turn with all its attachments' bytes, for /retry."""

    async def replace_answers_after(self, user_turn_id: int) -> None:
        """Mark the answers to this turn (and later ones) `replaced`, for /retry; failed
        and interrupted answers keep that status."""

    async def latest_answer(self, conversation_id: int) -> AnswerRecord | None:
        """The conversation's newest answer not `replaced` (whatever else its status, the
        one streaming included), with its messages and its question's message and sender;
        None before the first answer. For the Stop and Regenerate buttons."""

    async def edit_user_turn(self, chat_id: int, message_id: int, text: str) -> EditedTurn | None:
        """The user edited message (chat_id, message_id): its stored turn takes `text`
        (attachments stay). None when no turn came from that message. Says whether the
        text changed, whether the turn is its conversation's newest user turn, and the
        messages of the turn's newest answer not `replaced`."""

    async def unfinished_answers(self) -> list[PendingAnswer]:
        """Answers a dead process left `streaming` (marked `interrupted` by this call),
        and recent user turns that never got an answer started (`assistant_turn_id` None),
        such as turns waiting behind another answer. Each is reported once: a second call
        does not report it again."""

    async def claim_command(self, chat_id: int, message_id: int) -> bool:
        """True the first time the command in message (chat_id, message_id) is claimed, False
        on every later call (a re-delivered update): a command is carried out at most once.
        Claims older than `COMMAND_CLAIM_DAYS` may be forgotten (Telegram re-delivers an
        update for at most a day). `migrate_chat` moves claims with the chat."""

    async def hold_message(self, chat_id: int, message_id: int, payload: str) -> None:
        """Keep a message that waits in memory to become a turn with what follows it (an
        album's part, media waiting for its question) until `release_held`: Telegram
        counts it delivered already, so only this keeps it through a crash."""

    async def release_held(self, chat_id: int, message_ids: Sequence[int]) -> None:
        """Forget held messages whose turn is stored or refused."""

    async def held_messages(self, held_before: float) -> list[HeldMessage]:
        """The messages held since before `held_before` (epoch seconds) and not released,
        oldest first: at start-up, those the process before this one was holding."""

    # admin ---------------------------------------------------------------
    async def export_conversation(self, conversation_id: int) -> dict[str, Any]:
        """A JSON-ready document of the conversation (attachments as metadata)."""

    async def chat_stats(self) -> list[ChatStats]: ...

    async def count_user_turns_since(self, user_id: int, since_epoch: float) -> int:
        """For per-user quotas."""

    # retention -----------------------------------------------------------
    async def forget(
        self, *, conversations_before: float | None, media_before: float | None, batch: int
    ) -> Forgotten:
        """One small batch of retention: up to `batch` whole conversations untouched since
        `conversations_before` deleted, and the bytes of up to `batch` files no turn since
        `media_before` shows dropped (epoch seconds; None leaves that kind alone). Attachments
        whose bytes were dropped keep their metadata and come back from history without
        bytes. Call again while `Forgotten.more`."""

    async def database_stats(self) -> DatabaseStats:
        """Rows and bytes per table, and the conversation untouched the longest."""
