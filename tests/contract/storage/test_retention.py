"""Retention on both engines: whole conversations untouched too long are deleted, old media
loses its bytes but keeps its place in the turn, in small batches; and the database's figures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from storage import (
    AnswerStatus,
    ConversationKey,
    NewAttachment,
    RecordedTurn,
    SQLiteStore,
    Store,
    Unavailability,
    store_unavailable,
)
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


async def test_a_turn_racing_its_conversations_deletion_may_be_tried_again(
    postgres_url: str,
) -> None:
    """On PostgreSQL a message can arrive in a conversation the moment retention deletes it
    (another connection, or another process): its insert fails, as one that may pass, and
    the next try starts a new conversation."""
    async with opened_store(postgres_url) as store:
        old = await _record(store, ConversationKey(1), 1)
        deleting = await asyncpg.connect(postgres_url)
        try:
            async with deleting.transaction():
                await deleting.execute("DELETE FROM turns")
                await deleting.execute("DELETE FROM conversations")
                racing = asyncio.create_task(_record(store, ConversationKey(1), 2))
                await asyncio.sleep(0.3)  # the insert now waits for the deletion
                assert not racing.done()
            with pytest.raises(asyncpg.ForeignKeyViolationError) as raised:
                await racing
        finally:
            await deleting.close()
        problem = store_unavailable(raised.value)
        assert problem is not None and problem.reason is Unavailability.LOCKED
        again = await _record(store, ConversationKey(1), 2)
        assert again.conversation_id != old.conversation_id
