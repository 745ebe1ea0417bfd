"""`PostgresStore`: the bot's `Store` on a PostgreSQL database through an asyncpg pool."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import asyncpg

from storage.coordination import default_instance_id
from storage.errors import StorageError
from storage.migrations import SchemaTooNew
from storage.models import (
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
from storage.postgres.connection import (
    ACQUIRE_TIMEOUT_SECONDS,
    create_pool,
    unbounded_connection,
    unreachable,
    unusable,
)
from storage.postgres.conversations import (
    current_conversation,
    insert_conversation,
    load_setting,
    migrate_chat,
    record_user_turn,
)
from storage.postgres.coordination import PostgresCoordination
from storage.postgres.export import export_conversation, load_chat_stats
from storage.postgres.history import load_history, load_last_user_turn
from storage.postgres.migrations import apply_migrations
from storage.postgres.recovery import collect_unfinished
from storage.postgres.revisions import claim_command, load_latest_answer, rewrite_user_turn
from storage.postgres.turns import (
    finish,
    insert_answer,
    insert_user_turn,
    replace_answers_after,
    save_progress_of_many,
)
from storage.turns import check_and_hash
from storage.url import redact

if TYPE_CHECKING:
    from storage.postgres.connection import Db


class PostgresStore:
    """Conversations in a PostgreSQL database, shared safely by several processes.

    Each operation borrows a pooled connection, so operations of different conversations
    run in parallel. Every operation is one statement (atomic by itself) or one transaction
    at PostgreSQL's default isolation, READ COMMITTED; the unique indexes and advisory locks
    (see `storage.postgres.locks`) make concurrent appends safe across processes. Appends in
    one conversation land in the order they commit, which is the order they were called in
    as long as the caller awaits each before the next (as the bot's lanes do).
    """

    def __init__(
        self, url: str, *, max_attachment_bytes: int, instance_id: str | None = None
    ) -> None:
        self.url = url
        self.max_attachment_bytes = max_attachment_bytes
        self.instance_id = instance_id or default_instance_id()
        """Recorded as the owner of every answer this store starts (see `coordination`)."""
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)!r})"

    async def open(self) -> None:
        """Connect and migrate; an unreachable server, a refused login or a schema from a
        newer phi4bot becomes a `StorageError` whose one sentence names the server."""
        if self._pool is not None:
            return
        pool = await create_pool(self.url)
        try:
            async with unbounded_connection(self.url) as db:
                await apply_migrations(db)
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, SchemaTooNew):
                raise StorageError(
                    f"The database {redact(self.url)} was written by a newer phi4bot ({exc})."
                ) from exc
            if isinstance(exc, OSError | asyncpg.InterfaceError):
                raise unreachable(self.url, exc) from exc
            if isinstance(exc, asyncpg.PostgresError):
                raise unusable(self.url, exc) from exc
            raise
        self._pool = pool

    async def close(self) -> None:
        """Let running operations give their connections back, then close the pool."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> PostgresStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def coordination(self) -> PostgresCoordination:
        """Leases and wake-ups shared with the other processes on this database; the
        answers this store starts are owned by its instance id."""
        return PostgresCoordination(self.url, self.instance_id, self._session)

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[Db]:
        """A pooled connection, for this operation alone until it ends."""
        if self._pool is None:
            raise StorageError(f"The store for {redact(self.url)} is not open.")
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as db:
            yield db

    # conversations -------------------------------------------------------
    async def current_conversation(self, key: ConversationKey) -> int:
        """The key's newest conversation, created once on first use, even by processes
        asking at the same moment."""
        async with self._session() as db:
            return await current_conversation(db, key)

    async def new_conversation(self, key: ConversationKey) -> int:
        """A newer conversation for the key becomes its current one; older ones stay."""
        async with self._session() as db:
            return await insert_conversation(db, key)

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """See `storage.postgres.conversations.migrate_chat`."""
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
                    "DELETE FROM chat_settings WHERE chat_id = $1 AND name = $2", chat_id, name
                )
            else:
                await db.execute(
                    "INSERT INTO chat_settings (chat_id, name, value) VALUES ($1, $2, $3) "
                    "ON CONFLICT (chat_id, name) DO UPDATE SET value = excluded.value",
                    chat_id,
                    name,
                    value,
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
        """Store a user's turn; None if (chat_id, message_id) was stored before, by this
        process or another. Oversized attachments are refused before anything is written."""
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
        """`add_user_turn` into the key's current conversation (created on first use), on
        one connection: see `storage.postgres.conversations.record_user_turn`."""
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

    async def start_answer(self, conversation_id: int, user_turn_id: int) -> int:
        """Record an assistant turn in status `streaming` answering `user_turn_id`."""
        async with self._session() as db:
            return await insert_answer(db, conversation_id, user_turn_id, self.instance_id)

    async def update_answers(self, checkpoints: Sequence[AnswerCheckpoint]) -> None:
        """Streaming answers' checkpoints on one connection, in one round trip; see
        `storage.postgres.turns.save_progress_of_many`."""
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
        """The chat's setting `prompt_setting` and `history(...)`, on one connection."""
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
        """See `storage.postgres.revisions.load_latest_answer`."""
        async with self._session() as db:
            return await load_latest_answer(db, conversation_id)

    async def edit_user_turn(self, chat_id: int, message_id: int, text: str) -> EditedTurn | None:
        """See `storage.postgres.revisions.rewrite_user_turn`."""
        async with self._session() as db:
            return await rewrite_user_turn(db, chat_id, message_id, text)

    async def claim_command(self, chat_id: int, message_id: int) -> bool:
        """See `storage.postgres.revisions.claim_command`."""
        async with self._session() as db:
            return await claim_command(db, chat_id, message_id)

    async def unfinished_answers(self) -> list[PendingAnswer]:
        """See `storage.postgres.recovery.collect_unfinished`; each is reported once, and
        answers that live processes are writing are left alone."""
        async with self._session() as db:
            return await collect_unfinished(db)

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
            found = await db.fetchval(
                "SELECT count(*) FROM turns WHERE sender_id = $1 AND role = 'user' "
                "AND created_at >= $2",
                user_id,
                datetime.fromtimestamp(since_epoch, UTC),
            )
        return int(found)
