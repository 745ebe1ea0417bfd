"""Retention on both engines: whole conversations untouched too long are deleted, old media
loses its bytes but keeps its place in the turn, in small batches; and the database's figures."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import pytest

from storage import (
    AnswerStatus,
    ConversationKey,
    NewAttachment,
    RecordedTurn,
    SQLiteStore,
    SQLStore,
    Store,
    retention,
    store_unavailable,
)
from storage.errors import refers_to_missing_row
from storage.session import Engine, Row, Session
from tests.databases import opened_store, scalar

PHOTO = NewAttachment("image", "image/png", b"\x89PNG old photo", "old.png", "file-1")
OTHER = NewAttachment("image", "image/png", b"\x89PNG another one", "new.png", "file-2")


async def _record(
    store: Store, key: ConversationKey, message_id: int, *media: NewAttachment
) -> RecordedTurn:
    recorded = await store.record_user_turn(
        key, text=f"m{message_id}", chat_id=key.chat_id, message_id=message_id, attachments=media
    )
    assert recorded is not None
    return recorded


async def _moment() -> float:
    """A cutoff strictly between what was stored before and what is stored after."""
    await asyncio.sleep(0.02)
    now = time.time()
    await asyncio.sleep(0.02)
    return now


async def _forget_all(store: Store, **before: float | None) -> tuple[int, int]:
    conversations = media = 0
    while True:
        batch = await store.forget(
            conversations_before=before.get("conversations"),
            media_before=before.get("media"),
            batch=2,
        )
        conversations += batch.conversations
        media += batch.media
        if not batch.more:
            return conversations, media


async def test_conversations_untouched_since_the_cutoff_are_deleted_whole(
    store: Store, store_url: str
) -> None:
    old = await _record(store, ConversationKey(1), 1, PHOTO)
    answer = await store.start_answer(old.conversation_id, old.user_turn_id)
    await store.finish_answer(answer, text="A cat.", status=AnswerStatus.COMPLETE)
    shared = await _record(store, ConversationKey(2), 1, PHOTO, OTHER)
    cutoff = await _moment()
    kept = await _record(store, ConversationKey(2), 2)  # touches the second conversation
    assert kept.conversation_id == shared.conversation_id

    assert await _forget_all(store, conversations=cutoff) == (1, 0)

    assert await scalar(store_url, "SELECT count(*) FROM conversations") == 1
    assert await scalar(store_url, "SELECT count(*) FROM turns") == 2
    assert await scalar(store_url, "SELECT count(*) FROM attachments") == 2
    assert await scalar(store_url, "SELECT count(*) FROM blobs") == 2  # shared ones stay
    history = await store.history(shared.conversation_id, char_budget=100, media_limit=5)
    assert [a.data for t in history for a in t.attachments] == [PHOTO.data, OTHER.data]
    fresh = await _record(store, ConversationKey(1), 2)  # the key starts anew
    assert fresh.conversation_id not in (old.conversation_id, shared.conversation_id)


async def test_files_only_a_deleted_conversation_showed_are_deleted_with_it(
    store: Store, store_url: str
) -> None:
    await _record(store, ConversationKey(1), 1, PHOTO, OTHER)
    cutoff = await _moment()
    assert await _forget_all(store, conversations=cutoff) == (1, 0)
    for table in ("conversations", "turns", "attachments", "blobs"):
        assert await scalar(store_url, f"SELECT count(*) FROM {table}") == 0, table


async def test_an_answer_still_streaming_keeps_its_conversation(store: Store) -> None:
    turn = await _record(store, ConversationKey(1), 1)
    await store.start_answer(turn.conversation_id, turn.user_turn_id)
    cutoff = await _moment()
    assert await _forget_all(store, conversations=cutoff) == (0, 0)
    assert await store.current_conversation(ConversationKey(1)) == turn.conversation_id


async def test_retention_goes_in_small_batches(store: Store) -> None:
    for chat in range(5):
        await _record(store, ConversationKey(chat), 1)
    cutoff = await _moment()
    first = await store.forget(conversations_before=cutoff, media_before=None, batch=2)
    assert (first.conversations, first.more) == (2, True)
    assert await _forget_all(store, conversations=cutoff) == (3, 0)
    last = await store.forget(conversations_before=cutoff, media_before=None, batch=2)
    assert (last.conversations, last.media, last.more) == (0, 0, False)


async def test_old_media_loses_its_bytes_but_keeps_its_place_in_the_turn(
    store: Store, store_url: str
) -> None:
    old = await _record(store, ConversationKey(1), 1, PHOTO, OTHER)
    cutoff = await _moment()
    await _record(store, ConversationKey(2), 1, OTHER)  # a newer turn shows this one

    assert await _forget_all(store, media=cutoff) == (0, 1)

    (turn,) = await store.history(old.conversation_id, char_budget=100, media_limit=5)
    assert [(a.filename, a.size, a.data) for a in turn.attachments] == [
        ("old.png", len(PHOTO.data), None),
        ("new.png", len(OTHER.data), OTHER.data),
    ]
    last = await store.last_user_turn(old.conversation_id)
    assert last is not None
    assert [a.data for a in last.attachments] == [None, OTHER.data]
    assert await scalar(store_url, "SELECT count(*) FROM turns") == 2
    assert await _forget_all(store, media=cutoff) == (0, 0)  # each file dropped once


async def test_a_file_sent_again_after_its_bytes_were_dropped_is_stored_again(
    store: Store,
) -> None:
    await _record(store, ConversationKey(1), 1, PHOTO)
    cutoff = await _moment()
    assert await _forget_all(store, media=cutoff) == (0, 1)
    again = await _record(store, ConversationKey(1), 2, PHOTO)
    history = await store.history(again.conversation_id, char_budget=100, media_limit=5)
    assert [a.data for t in history for a in t.attachments] == [PHOTO.data, PHOTO.data]


async def test_nothing_is_forgotten_unless_asked(store: Store, store_url: str) -> None:
    await _record(store, ConversationKey(1), 1, PHOTO)
    forgotten = await store.forget(conversations_before=None, media_before=None, batch=10)
    assert (forgotten.conversations, forgotten.media) == (0, 0)
    assert await scalar(store_url, "SELECT count(*) FROM blobs WHERE dropped_at IS NULL") == 1


async def test_database_stats_give_each_tables_rows_and_size_and_the_oldest_conversation(
    store: Store,
) -> None:
    empty = await store.database_stats()
    assert empty.oldest_conversation is None
    first = await _record(store, ConversationKey(7), 1, PHOTO)
    await _moment()
    await _record(store, ConversationKey(8), 1)
    stats = await store.database_stats()
    rows = {table.name: table.rows for table in stats.tables}
    assert rows == {
        "conversations": 2,
        "turns": 2,
        "attachments": 1,
        "blobs": 1,
        "chat_settings": 0,
        "handled_commands": 0,
        "held_messages": 0,
    }
    assert all(table.size is not None and table.size > 0 for table in stats.tables)
    assert (stats.oldest_conversation, stats.oldest_chat) == (first.conversation_id, 7)
    assert stats.oldest_touched is not None
    assert abs(stats.oldest_touched.timestamp() - time.time()) < 60


async def test_a_new_sqlite_file_gives_freed_space_back(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    big = NewAttachment("image", "image/png", b"\x89PNG" + bytes(range(256)) * 4000, "big.png")
    async with SQLiteStore(path, max_attachment_bytes=2_000_000) as store:
        for n in range(5):
            chunk = NewAttachment(big.kind, big.mime_type, big.data + bytes([n]), big.filename)
            await _record(store, ConversationKey(n), 1, chunk)
        grown = path.stat().st_size
        cutoff = await _moment()
        assert await _forget_all(store, conversations=cutoff) == (5, 0)
        db = store._db
        assert db is not None
        await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = list(await db.execute_fetchall("PRAGMA freelist_count"))
        assert rows[0][0] == 0
    assert path.stat().st_size < grown / 4


async def test_an_older_sqlite_file_is_made_to_give_space_back_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with aiosqlite.connect(path) as before:  # a file from before: no auto_vacuum
        await before.execute("CREATE TABLE unrelated (x)")
        await before.commit()
        rows = list(await before.execute_fetchall("PRAGMA auto_vacuum"))
    assert rows[0][0] == 0  # NONE
    async with SQLiteStore(path, max_attachment_bytes=10) as store:
        db = store._db
        assert db is not None
        rows = list(await db.execute_fetchall("PRAGMA auto_vacuum"))
    assert rows[0][0] == 2  # INCREMENTAL


@pytest.mark.parametrize("path", ["text", "photo", "capped"])
async def test_a_turn_racing_its_conversations_deletion_starts_a_new_one_at_once(
    postgres_url: str, path: str
) -> None:
    """On PostgreSQL a message can arrive in a conversation the moment retention deletes it
    (another connection, or another process): its insert waits for the deletion, and the
    turn goes into a new conversation rather than failing, whichever way it is written."""
    key = ConversationKey(1)
    async with opened_store(postgres_url) as store:
        old = await _record(store, key, 1)

        async def arrive() -> RecordedTurn | None:
            return await store.record_user_turn(
                key,
                text="late",
                chat_id=1,
                message_id=2,
                sender_id=7,
                attachments=[PHOTO] if path == "photo" else (),
                max_waiting=1 if path == "capped" else None,
            )

        deleting = await asyncpg.connect(postgres_url)
        try:
            async with deleting.transaction():
                await deleting.execute("DELETE FROM turns")
                await deleting.execute("DELETE FROM conversations")
                racing = asyncio.create_task(arrive())
                await asyncio.sleep(0.3)  # the insert now waits for the deletion
                assert not racing.done()
            new = await racing
        finally:
            await deleting.close()
        assert new is not None and new.conversation_id != old.conversation_id
        assert await store.current_conversation(key) == new.conversation_id
        history = await store.history(new.conversation_id, char_budget=1000, media_limit=1)
        assert [turn.text for turn in history] == ["late"]


async def test_a_message_stored_while_retention_chooses_its_conversation_is_kept(
    store_url: str,
) -> None:
    """Retention chooses the conversations to delete, then deletes them; a message stored in
    between (another connection on PostgreSQL; on SQLite it waits for the write lock) is
    never deleted with them: its conversation is kept, or the message starts a new one."""
    key = ConversationKey(1)
    async with opened_store(store_url) as retaining, opened_store(store_url) as arriving:
        await _record(retaining, key, 1)
        cutoff = await _moment()
        racing: list[asyncio.Task[RecordedTurn]] = []

        async def meanwhile() -> None:
            racing.append(asyncio.create_task(_record(arriving, key, 2)))
            await asyncio.wait(racing, timeout=2.0)  # stored, or waiting for the write lock

        assert isinstance(retaining, SQLStore)
        retaining.engine = PausedAfterChoosing(retaining.engine, meanwhile)
        deleted, _ = await _forget_all(retaining, conversations=cutoff)
        new = await racing[0]
        assert await arriving.current_conversation(key) == new.conversation_id
        history = await arriving.history(new.conversation_id, char_budget=1000, media_limit=0)
        texts = [turn.text for turn in history]
        assert (deleted, texts) in [(0, ["m1", "m2"]), (1, ["m2"])], (deleted, texts)


async def test_a_turn_for_a_conversation_that_is_gone_fails_at_once(store: Store) -> None:
    """Tried again it would fail again: it is not taken for a database that may come back."""
    old = await _record(store, ConversationKey(1), 1)
    cutoff = await _moment()
    assert await _forget_all(store, conversations=cutoff) == (1, 0)
    with pytest.raises((sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)) as raised:
        await store.add_user_turn(old.conversation_id, text="late", chat_id=1, message_id=2)
    assert refers_to_missing_row(raised.value)
    assert store_unavailable(raised.value) is None


class PausedAfterChoosing:
    """An engine whose sessions run `meanwhile` once, right after retention read which
    conversations are stale and before it deletes them: the moment a race would hit."""

    def __init__(self, engine: Engine, meanwhile: Callable[[], Awaitable[None]]) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.meanwhile: Callable[[], Awaitable[None]] | None = meanwhile

    async def open(self) -> None:
        await self.engine.open()

    async def close(self) -> None:
        await self.engine.close()

    async def reclaim(self) -> None:
        await self.engine.reclaim()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        async with self.engine.session() as inner:
            yield _PausingSession(inner, self)


class _PausingSession:
    def __init__(self, inner: Session, engine: PausedAfterChoosing) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.engine = engine

    async def execute(self, sql: str, *args: object) -> None:
        await self.inner.execute(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await self.inner.executemany(sql, rows)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        rows = await self.inner.fetch(sql, *args)
        meanwhile, self.engine.meanwhile = self.engine.meanwhile, None
        if meanwhile is not None and sql == retention._STALE_CONVERSATIONS:
            await meanwhile()
        else:
            self.engine.meanwhile = meanwhile
        return rows

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        return await self.inner.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: object) -> Any:
        return await self.inner.fetchval(sql, *args)

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.inner.transaction()
