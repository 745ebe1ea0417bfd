"""Schema migrations: ordered, recorded once, atomic, and able to upgrade an old database."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import aiosqlite
import pytest

from storage import AnswerStatus, ConversationKey, NewAttachment, SQLiteStore
from storage.connection import connect
from storage.migrations import MIGRATIONS, Migration, apply_migrations, migration, schema_version


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


async def test_empty_database_gets_every_migration_recorded_in_order(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with SQLiteStore(path, max_attachment_bytes=100):
        pass
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        recorded = db.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        assert recorded.fetchall() == [(m.version, m.name) for m in MIGRATIONS]
    assert {"conversations", "turns", "chat_settings", "attachments", "blobs"} <= _tables(path)


async def test_reopening_applies_nothing_again(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with SQLiteStore(path, max_attachment_bytes=100):
        pass
    db = await connect(path)
    try:
        assert await apply_migrations(db) == []
        assert await schema_version(db) == len(MIGRATIONS)
    finally:
        await db.close()


async def test_version_one_database_is_upgraded_with_its_data_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = await connect(path)
    try:
        assert await apply_migrations(db, upto=1) == [MIGRATIONS[0].name]
        await db.execute(
            "INSERT INTO conversations (id, chat_id, created_at) VALUES (7, 42, ?)",
            (time.time(),),
        )
        await db.execute(
            "INSERT INTO turns (conversation_id, role, text, chat_id, message_id, created_at) "
            "VALUES (7, 'user', 'from the old days', 42, 1, ?)",
            (time.time(),),
        )
        await db.execute("INSERT INTO chat_settings VALUES (42, 'system_prompt', 'Be brief.')")
    finally:
        await db.close()
    assert "attachments" not in _tables(path)

    async with SQLiteStore(path, max_attachment_bytes=100) as store:
        conversation = await store.current_conversation(ConversationKey(42))
        assert conversation == 7
        assert await store.get_setting(42, "system_prompt") == "Be brief."
        assert (
            await store.add_user_turn(conversation, text="again", chat_id=42, message_id=1) is None
        )
        photo = NewAttachment("image", "image/png", b"png bytes", "p.png")
        user = await store.add_user_turn(
            conversation, text="new", chat_id=42, message_id=2, attachments=[photo]
        )
        assert user is not None
        answer = await store.start_answer(conversation, user)
        await store.finish_answer(answer, text="ok", status=AnswerStatus.COMPLETE)
        turns = await store.history(conversation, char_budget=1000, media_limit=1)
    assert [t.text for t in turns] == ["from the old days", "new", "ok"]
    assert turns[1].attachments[0].data == b"png bytes"
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_a_failing_migration_leaves_the_previous_version_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def add_table_then_fail(db: aiosqlite.Connection) -> None:
        await db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("disk on fire")

    broken = [
        *MIGRATIONS,
        Migration(len(MIGRATIONS) + 1, "add_table_then_fail", add_table_then_fail),
    ]
    monkeypatch.setattr("storage.migrations.MIGRATIONS", broken)
    path = tmp_path / "bot.db"
    db = await connect(path)
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            await apply_migrations(db)
        assert await schema_version(db) == len(broken) - 1
    finally:
        await db.close()
    assert "half_done" not in _tables(path)


def test_decorator_registers_steps_in_the_order_they_are_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry: list[Migration] = []
    monkeypatch.setattr("storage.migrations.MIGRATIONS", registry)

    @migration
    async def first(db: aiosqlite.Connection) -> None:
        await db.execute("SELECT 1")

    @migration
    async def second(db: aiosqlite.Connection) -> None:
        await db.execute("SELECT 2")

    assert [(m.version, m.name) for m in registry] == [(1, "first"), (2, "second")]
