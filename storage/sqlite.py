"""`SQLiteStore`: the bot's `Store` on one SQLite file (or `:memory:`) through aiosqlite."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from storage.connection import check_database_file, connect, transaction
from storage.conversations import (
    current_conversation,
    insert_conversation,
    load_setting,
    migrate_chat,
    record_user_turn,
)
from storage.coordination import LocalCoordination
from storage.errors import StorageError
from storage.export import export_conversation, load_chat_stats
from storage.history import load_history, load_last_user_turn
from storage.migrations import SchemaTooNew, apply_migrations
from storage.models import (
    COMMAND_CLAIM_DAYS,
    AnswerCheckpoint,
    AnswerRecord,
    AnswerStatus,
    ChatStats,
    ConversationKey,
    EditedTurn,
    HistoryTurn,
    NewAttachment,
    PendingAnswer,
    PromptInputs,
    RecordedTurn,
)
from storage.recovery import collect_unfinished
from storage.revisions import load_latest_answer, rewrite_user_turn
from storage.turns import (
    check_and_hash,
    finish,
    insert_answer,
    insert_user_turn,
    replace_answers_after,
    save_progress_of_many,
)


class SQLiteStore:
    """Conversations in one SQLite file.

    One connection does all the work, one operation at a time under a FIFO lock: SQLite has a
    single writer anyway, no operation ever sees another's transaction half done, and
    concurrent appends land in the order they were called. Every operation is one statement
    (atomic by itself) or one `BEGIN IMMEDIATE` transaction. See `storage.connection` for
    what survives a crash.
    """

    def __init__(self, path: Path | str, *, max_attachment_bytes: int) -> None:
        self.path = Path(path)
        self.max_attachment_bytes = max_attachment_bytes
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect and migrate; every way the file can be unusable becomes a `StorageError`
        whose one sentence names the path."""
        if self._db is not None:
            return
        check_database_file(self.path)
        try:
            db = await connect(self.path)
        except sqlite3.Error as exc:
            raise _unusable(self.path, exc) from exc
        try:
            await apply_migrations(db)
        except BaseException as exc:
            await db.close()
            if isinstance(exc, SchemaTooNew):
                raise StorageError(
                    f"The database {self.path} was written by a newer phi4bot ({exc})."
                ) from exc
            if isinstance(exc, sqlite3.Error):
                raise _unusable(self.path, exc) from exc
            raise
        self._db = db

    async def close(self) -> None:
        """Let running operations finish, then close; closing twice is harmless."""
        async with self._lock:
            db, self._db = self._db, None
            if db is None:
                return
            with contextlib.suppress(sqlite3.Error):
                await db.execute("PRAGMA optimize")
            await db.close()

    async def __aenter__(self) -> SQLiteStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, for this operation alone until it ends."""
        async with self._lock:
            if self._db is None:
                raise StorageError(f"The store for {self.path} is not open.")
            yield self._db

    # conversations -------------------------------------------------------
    async def current_conversation(self, key: ConversationKey) -> int:
        """See `storage.conversations.current_conversation`."""
        async with self._session() as db:
            return await current_conversation(db, key)

    async def new_conversation(self, key: ConversationKey) -> int:
        """A newer conversation for the key becomes its current one; older ones stay."""
        async with self._session() as db:
            return await insert_conversation(db, key)

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """See `storage.conversations.migrate_chat`."""
        async with self._session() as db:
            await migrate_chat(db, old_chat_id, new_chat_id)

    # settings ------------------------------------------------------------
    async def get_setting(self, chat_id: int, name: str) -> str | None:
        async with self._session() as db:
            return await load_setting(db, chat_id, name)

    async def set_setting(self, chat_id: int, name: str, value: str | None) -> None:
        """`None` removes the setting (back to the default)."""
        async with self._session() as db:
            if value is None:
                await db.execute(
                    "DELETE FROM chat_settings WHERE chat_id = ? AND name = ?", (chat_id, name)
                )
            else:
                await db.execute(
                    "INSERT INTO chat_settings (chat_id, name, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (chat_id, name) DO UPDATE SET value = excluded.value",
                    (chat_id, name, value),
                )

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
        """Store a user's turn; None if (chat_id, message_id) was stored before.

        Attachments over the cap raise `AttachmentTooLarge` before anything is written; their
        bytes are stored once per SHA-256, so a photo sent again costs only a metadata row.
        """
        hashes = await check_and_hash(attachments, self.max_attachment_bytes)
        async with self._session() as db:
            return await insert_user_turn(
                db,
                conversation_id,
                text=text,
                chat_id=chat_id,
                message_id=message_id,
                sender_id=sender_id,
                sender_name=sender_name,
                attachments=attachments,
                hashes=hashes,
            )

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
    ) -> RecordedTurn | None:
        """`add_user_turn` into the key's current conversation (created on first use), in
        one operation: see `storage.conversations.record_user_turn`."""
        hashes = await check_and_hash(attachments, self.max_attachment_bytes)
        async with self._session() as db:
            return await record_user_turn(
                db,
                key,
                text=text,
                chat_id=chat_id,
                message_id=message_id,
                sender_id=sender_id,
                sender_name=sender_name,
                attachments=attachments,
                hashes=hashes,
            )

    def coordination(self) -> LocalCoordination:
        """A SQLite database has one process: it holds every lease."""
        return LocalCoordination()

    async def start_answer(self, conversation_id: int, user_turn_id: int) -> int:
        """Record an assistant turn in status `streaming` answering `user_turn_id`."""
        async with self._session() as db:
            return await insert_answer(db, conversation_id, user_turn_id)

    async def update_answers(self, checkpoints: Sequence[AnswerCheckpoint]) -> None:
        """Streaming answers' checkpoints in one operation; see
        `storage.turns.save_progress_of_many`."""
        async with self._session() as db:
            await save_progress_of_many(db, checkpoints)

    async def finish_answer(
        self,
        turn_id: int,
        *,
        text: str,
        status: AnswerStatus,
        message_ids: Sequence[int] = (),
        error: str | None = None,
    ) -> None:
        """Record how an answer ended: complete, failed, stopped (or interrupted)."""
        async with self._session() as db:
            await finish(
                db, turn_id, text=text, status=status, message_ids=message_ids, error=error
            )

    async def history(
        self,
        conversation_id: int,
        *,
        char_budget: int,
        media_limit: int,
        until_turn_id: int | None = None,
    ) -> list[HistoryTurn]:
        """See `storage.history.load_history`."""
        async with self._session() as db:
            return await load_history(
                db,
                conversation_id,
                char_budget=char_budget,
                media_limit=media_limit,
                until_turn_id=until_turn_id,
            )

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
        """The chat's setting `prompt_setting` and `history(...)`, read in one operation."""
        async with self._session() as db:
            system_prompt = await load_setting(db, chat_id, prompt_setting)
            history = await load_history(
                db,
                conversation_id,
                char_budget=char_budget,
                media_limit=media_limit,
                until_turn_id=until_turn_id,
            )
        return PromptInputs(system_prompt=system_prompt, history=history)

    async def last_user_turn(self, conversation_id: int) -> HistoryTurn | None:
        """The newest user turn with its attachments' bytes, for /retry."""
        async with self._session() as db:
            return await load_last_user_turn(db, conversation_id)

    async def replace_answers_after(self, user_turn_id: int) -> None:
        """Mark the answers after this user turn `replaced`, for /retry."""
        async with self._session() as db:
            await replace_answers_after(db, user_turn_id)

    async def latest_answer(self, conversation_id: int) -> AnswerRecord | None:
        """See `storage.revisions.load_latest_answer`."""
        async with self._session() as db:
            return await load_latest_answer(db, conversation_id)

    async def edit_user_turn(self, chat_id: int, message_id: int, text: str) -> EditedTurn | None:
        """See `storage.revisions.rewrite_user_turn`."""
        async with self._session() as db, transaction(db):
            return await rewrite_user_turn(db, chat_id, message_id, text)

    async def unfinished_answers(self) -> list[PendingAnswer]:
        """See `storage.recovery.collect_unfinished`; each is reported once."""
        async with self._session() as db:
            return await collect_unfinished(db)

    async def claim_command(self, chat_id: int, message_id: int) -> bool:
        """True the first time; claims older than `COMMAND_CLAIM_DAYS` are forgotten."""
        now = time.time()
        async with self._session() as db, transaction(db):
            await db.execute(
                "DELETE FROM handled_commands WHERE handled_at < ?",
                (now - COMMAND_CLAIM_DAYS * 86400,),
            )
            rows = list(
                await db.execute_fetchall(
                    "INSERT INTO handled_commands (chat_id, message_id, handled_at) "
                    "VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING chat_id",
                    (chat_id, message_id, now),
                )
            )
        return bool(rows)

    # admin ---------------------------------------------------------------
    async def export_conversation(self, conversation_id: int) -> dict[str, Any]:
        """See `storage.export.export_conversation`."""
        async with self._session() as db:
            return await export_conversation(db, conversation_id)

    async def chat_stats(self) -> list[ChatStats]:
        async with self._session() as db:
            return await load_chat_stats(db)

    async def count_user_turns_since(self, user_id: int, since_epoch: float) -> int:
        """For per-user quotas."""
        async with self._session() as db:
            rows = list(
                await db.execute_fetchall(
                    "SELECT count(*) FROM turns WHERE sender_id = ? AND role = 'user' "
                    "AND created_at >= ?",
                    (user_id, since_epoch),
                )
            )
        return int(rows[0][0])


def _unusable(path: Path, exc: sqlite3.Error) -> StorageError:
    """One sentence naming the path, in words a person deploying the bot can act on."""
    reason = str(exc).rstrip(".")
    if "file is not a database" in reason:
        return StorageError(f"The file {path} is not a SQLite database.")
    return StorageError(f"Cannot use the database {path}: {reason}.")
