"""Schema migrations: ordered, recorded once, atomic, and able to upgrade an old database."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import aiosqlite
import asyncpg
import pytest

from storage import (
    AnswerStatus,
    ConversationKey,
    NewAttachment,
    StorageError,
    database_engine,
    schema,
    store_for,
)
from storage.postgres import migrations as postgres_migrations
from storage.schema import Migration
from storage.sqlite import migrations as sqlite_migrations
from storage.sqlite.connection import connect
from storage.sqlite.migrations import MIGRATIONS, migration
from storage.url import parse_database_url
from tests.databases import execute, fetch_all, opened_store, table_names


@contextlib.asynccontextmanager
async def _raw(url: str) -> AsyncIterator[tuple[Any, ModuleType]]:
    """A bare connection to the database and the migrations module of its engine."""
    db: Any
    module: ModuleType
    if database_engine(url) == "sqlite":
        db, module = await connect(parse_database_url(url)), sqlite_migrations
    else:
        db, module = await asyncpg.connect(url), postgres_migrations
    try:
        yield db, module
    finally:
        await db.close()


def _stamp(url: str) -> float | datetime:
    """A creation time as the engine stores it."""
    return time.time() if database_engine(url) == "sqlite" else datetime.now(UTC)


async def _columns(url: str, table: str) -> list[str]:
    """The table's column names in their order on the engine."""
    if database_engine(url) == "sqlite":
        sql = f"SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
    else:
        sql = (
            "SELECT column_name FROM information_schema.columns"
            f" WHERE table_schema = current_schema() AND table_name = '{table}'"
            " ORDER BY ordinal_position"
        )
    return [row[0] for row in await fetch_all(url, sql)]


@pytest.mark.parametrize(
    "table",
    [
        schema.CONVERSATIONS,
        schema.CHAT_SETTINGS,
        schema.TURNS,
        schema.BLOBS,
        schema.ATTACHMENTS,
        schema.HANDLED_COMMANDS,
    ],
    ids=lambda table: table.name,
)
async def test_each_table_starts_with_the_columns_described_once_for_both_engines(
    store_url: str, table: schema.CreateTable
) -> None:
    async with opened_store(store_url):
        pass
    described = [column.name for column in table.columns]
    assert (await _columns(store_url, table.name))[: len(described)] == described


def test_both_engines_have_the_same_migrations() -> None:
    assert [(m.version, m.name) for m in postgres_migrations.MIGRATIONS] == [
        (m.version, m.name) for m in MIGRATIONS
    ]


async def test_empty_database_gets_every_migration_recorded_in_order(store_url: str) -> None:
    async with opened_store(store_url):
        pass
    async with _raw(store_url) as (db, module):
        assert await module.schema_version(db) == len(MIGRATIONS)
    recorded = await fetch_all(store_url, "SELECT version, name FROM schema_migrations ORDER BY 1")
    assert recorded == [(m.version, m.name) for m in MIGRATIONS]
    tables = await table_names(store_url)
    assert {"conversations", "turns", "chat_settings", "attachments", "blobs"} <= tables


async def test_reopening_applies_nothing_again(store_url: str) -> None:
    async with opened_store(store_url):
        pass
    async with _raw(store_url) as (db, module):
        assert await module.apply_migrations(db) == []
        assert await module.schema_version(db) == len(MIGRATIONS)


async def test_version_one_database_is_upgraded_with_its_data_kept(store_url: str) -> None:
    async with _raw(store_url) as (db, module):
        assert await module.apply_migrations(db, upto=1) == [MIGRATIONS[0].name]
    await execute(
        store_url,
        "INSERT INTO conversations (id, chat_id, created_at) VALUES (7, 42, ?)",
        _stamp(store_url),
    )
    await execute(
        store_url,
        "INSERT INTO turns (conversation_id, role, text, chat_id, message_id, created_at) "
        "VALUES (7, 'user', 'from the old days', 42, 1, ?)",
        _stamp(store_url),
    )
    await execute(store_url, "INSERT INTO chat_settings VALUES (42, 'system_prompt', 'Be brief.')")
    assert "attachments" not in await table_names(store_url)

    async with opened_store(store_url, max_attachment_bytes=100) as store:
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
    async with _raw(store_url) as (db, module):
        assert await module.schema_version(db) == len(MIGRATIONS)


async def test_a_failing_migration_leaves_the_previous_version_intact(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def add_table_then_fail(db: Any) -> None:
        await db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("disk on fire")

    async with _raw(store_url) as (db, module):
        broken = [
            *module.MIGRATIONS,
            module.Migration(len(MIGRATIONS) + 1, "add_table_then_fail", add_table_then_fail),
        ]
        monkeypatch.setattr(module, "MIGRATIONS", broken)
        with pytest.raises(RuntimeError, match="disk on fire"):
            await module.apply_migrations(db)
        assert await module.schema_version(db) == len(broken) - 1
    assert "half_done" not in await table_names(store_url)


async def test_database_from_a_newer_version_is_refused(store_url: str) -> None:
    async with opened_store(store_url):
        pass
    if database_engine(store_url) == "sqlite":
        await execute(store_url, f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    else:
        await execute(
            store_url,
            "INSERT INTO schema_migrations (version, name) VALUES (?, 'from_the_future')",
            len(MIGRATIONS) + 1,
        )
    with pytest.raises(StorageError, match="written by a newer phi4bot"):
        async with opened_store(store_url):
            pass


def test_decorator_registers_steps_in_the_order_they_are_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry: list[Migration] = []
    monkeypatch.setattr("storage.sqlite.migrations.MIGRATIONS", registry)

    @migration
    async def first(db: aiosqlite.Connection) -> None:
        await db.execute("SELECT 1")

    @migration
    async def second(db: aiosqlite.Connection) -> None:
        await db.execute("SELECT 2")

    assert [(m.version, m.name) for m in registry] == [(1, "first"), (2, "second")]


async def test_processes_opening_a_new_postgresql_database_at_once_each_come_up(
    postgres_url: str,
) -> None:
    stores = [store_for(postgres_url, max_attachment_bytes=10) for _ in range(4)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    recorded = await fetch_all(postgres_url, "SELECT version, name FROM schema_migrations")
    assert sorted(recorded) == [(m.version, m.name) for m in MIGRATIONS]
