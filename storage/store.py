"""`SQLStore`: the bot's `Store`, written once over an engine's session and dialect."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Self

from storage.conversations import (
    current_conversation,
    insert_conversation,
    load_setting,
    migrate_chat,
    record_user_turn,
    save_setting,
)
from storage.coordination import Coordination
from storage.export import export_conversation, load_chat_stats
from storage.held import held_messages, hold_message, release_held
from storage.history import load_history, load_last_user_turn
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
from storage.recovery import collect_unfinished, interrupt_orphans
from storage.retention import database_stats, forget
from storage.revisions import claim_command, load_latest_answer, rewrite_user_turn
from storage.session import Engine, Observer, Session, timed
from storage.turns import (
    check_and_hash,
    finish,
    insert_answer,
    insert_user_turn,
    replace_answers_after,
    save_progress_of_many,
)


class SQLStore:
    """Conversations in a SQL database: every operation borrows one session of the engine
    for as long as it runs, and is one statement (atomic by itself) or one transaction.
    See `storage.base.Store` for what each operation promises; the engines
    (`storage.sqlite`, `storage.postgres`) say how they connect, migrate and lock.

    `owner` is recorded on every answer this store starts (the process's instance id where
    several processes share the database); `coordination` makes the engine's
    `storage.coordination.Coordination`. `observe` registers who is told each operation's
    name and time.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_attachment_bytes: int,
        owner: str | None,
        coordination: Callable[[], Coordination],
    ) -> None:
        self.engine = engine
        self.max_attachment_bytes = max_attachment_bytes
        self.owner = owner
        self._coordination = coordination
        self._observer: Observer | None = None

    def observe(self, observer: Observer | None) -> None:
        """Tell `observer` each operation's name and time from now on (None: nobody)."""
        self._observer = observer

    def _session(self, name: str) -> AbstractAsyncContextManager[Session]:
        return timed(self.engine, name, self._observer)

    async def open(self) -> None:
        await self.engine.open()

    async def close(self) -> None:
        await self.engine.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def coordination(self) -> Coordination:
        """How this process takes turns with others sharing the database, as the engine
        does it."""
        return self._coordination()

    # conversations -------------------------------------------------------
    async def current_conversation(self, key: ConversationKey) -> int:
        async with self._session("current_conversation") as db:
            return await current_conversation(db, key)

    async def new_conversation(self, key: ConversationKey) -> int:
        """A newer conversation for the key becomes its current one; older ones stay."""
        async with self._session("new_conversation") as db:
            return await insert_conversation(db, key)

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        async with self._session("migrate_chat") as db:
            await migrate_chat(db, old_chat_id, new_chat_id)

    # settings ------------------------------------------------------------
    async def get_setting(self, chat_id: int, name: str) -> str | None:
        async with self._session("get_setting") as db:
            return await load_setting(db, chat_id, name)

    async def set_setting(self, chat_id: int, name: str, value: str | None) -> None:
        async with self._session("set_setting") as db:
            await save_setting(db, chat_id, name, value)

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
        """Attachments over the cap raise `AttachmentTooLarge` before anything is written;
        their bytes are stored once per SHA-256, so a photo sent again costs a metadata row."""
        hashes = await check_and_hash(attachments, self.max_attachment_bytes)
        async with self._session("add_user_turn") as db:
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
        max_waiting: int | None = None,
    ) -> RecordedTurn | None:
        hashes = await check_and_hash(attachments, self.max_attachment_bytes)
        async with self._session("record_user_turn") as db:
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
                max_waiting=max_waiting,
            )

    async def start_answer(self, conversation_id: int, user_turn_id: int) -> int:
        async with self._session("start_answer") as db:
            return await insert_answer(db, conversation_id, user_turn_id, self.owner)

    async def update_answers(self, checkpoints: Sequence[AnswerCheckpoint]) -> None:
        async with self._session("update_answers") as db:
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
        async with self._session("finish_answer") as db:
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
        async with self._session("history") as db:
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
        async with self._session("prompt_inputs") as db:
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
        async with self._session("last_user_turn") as db:
            return await load_last_user_turn(db, conversation_id)

    async def replace_answers_after(self, user_turn_id: int) -> None:
        async with self._session("replace_answers_after") as db:
            await replace_answers_after(db, user_turn_id)

    async def latest_answer(self, conversation_id: int) -> AnswerRecord | None:
        async with self._session("latest_answer") as db:
            return await load_latest_answer(db, conversation_id)

    async def edit_user_turn(self, chat_id: int, message_id: int, text: str) -> EditedTurn | None:
        async with self._session("edit_user_turn") as db:
            return await rewrite_user_turn(db, chat_id, message_id, text)

    async def unfinished_answers(self) -> list[PendingAnswer]:
        async with self._session("unfinished_answers") as db:
            return await collect_unfinished(db)

    async def orphaned_answers(self) -> list[PendingAnswer]:
        """Answers left streaming by processes that are gone, now interrupted (see
        `storage.recovery.interrupt_orphans`), for the engine's coordination."""
        async with self._session("orphaned_answers") as db:
            return await interrupt_orphans(db)

    async def claim_command(self, chat_id: int, message_id: int) -> bool:
        async with self._session("claim_command") as db:
            return await claim_command(db, chat_id, message_id)

    async def hold_message(self, chat_id: int, message_id: int, payload: str) -> None:
        async with self._session("hold_message") as db:
            await hold_message(db, chat_id, message_id, payload)

    async def release_held(self, chat_id: int, message_ids: Sequence[int]) -> None:
        async with self._session("release_held") as db:
            await release_held(db, chat_id, message_ids)

    async def held_messages(self, held_before: float) -> list[HeldMessage]:
        async with self._session("held_messages") as db:
            return await held_messages(db, held_before)

    # admin ---------------------------------------------------------------
    async def export_conversation(self, conversation_id: int) -> dict[str, Any]:
        async with self._session("export_conversation") as db:
            return await export_conversation(db, conversation_id)

    async def chat_stats(self) -> list[ChatStats]:
        async with self._session("chat_stats") as db:
            return await load_chat_stats(db)

    async def count_user_turns_since(self, user_id: int, since_epoch: float) -> int:
        async with self._session("count_user_turns_since") as db:
            found = await db.fetchval(
                "SELECT count(*) FROM turns WHERE sender_id = ? AND role = 'user' "
                "AND created_at >= ?",
                user_id,
                db.dialect.time(since_epoch),
            )
        return int(found)

    # retention -----------------------------------------------------------
    async def forget(
        self, *, conversations_before: float | None, media_before: float | None, batch: int
    ) -> Forgotten:
        async with self._session("forget") as db:
            forgotten = await forget(
                db,
                conversations_before=conversations_before,
                media_before=media_before,
                batch=batch,
            )
        if forgotten.conversations or forgotten.media:
            await self.engine.reclaim()
        return forgotten

    async def database_stats(self) -> DatabaseStats:
        async with self._session("database_stats") as db:
            return await database_stats(db)
