"""Opening a database: durable settings, the full interface, and clear refusals of bad files."""

from __future__ import annotations

import inspect
import sqlite3
from pathlib import Path

import pytest

from storage import SQLiteStore, StorageError, Store, open_store, store_for
from storage.postgres import PostgresStore
from storage.sqlite.migrations import MIGRATIONS
from tests.databases import opened_store, with_database


async def test_open_store_creates_the_file_and_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "bot.db"
    store = await open_store(f"sqlite:///{path}", max_attachment_bytes=100)
    try:
        assert path.is_file()
    finally:
        await store.close()


async def test_connection_uses_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "bot.db", max_attachment_bytes=100) as store:
        db = store._db
        assert db is not None
        pragmas = {}
        for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous"):
            rows = list(await db.execute_fetchall(f"PRAGMA {name}"))
            pragmas[name] = rows[0][0]
    assert pragmas == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "synchronous": 1,  # NORMAL
    }


async def test_memory_database_works_for_tests() -> None:
    store = await open_store("sqlite:///:memory:", max_attachment_bytes=100)
    try:
        assert await store.get_setting(1, "system_prompt") is None
    finally:
        await store.close()


async def test_text_file_is_refused_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(StorageError) as caught:
        await open_store(f"sqlite:///{path}", max_attachment_bytes=100)
    assert str(caught.value) == f"The file {path} is not a SQLite database."
    assert path.read_text() == "these are my notes, not a database\n"


async def test_damaged_sqlite_file_is_refused_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    with pytest.raises(StorageError) as caught:
        await open_store(f"sqlite:///{path}", max_attachment_bytes=100)
    assert str(caught.value) == f"The file {path} is not a SQLite database."


async def test_directory_is_refused_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=f"{tmp_path} is a directory"):
        await open_store(f"sqlite:///{tmp_path}", max_attachment_bytes=100)


async def test_folder_that_cannot_be_created_is_refused_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="Cannot create the folder for the database") as caught:
        await open_store(f"sqlite:///{blocker}/bot.db", max_attachment_bytes=100)
    assert f"{blocker}/bot.db" in str(caught.value)


async def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StorageError, match="written by a newer phi4bot") as caught:
        await open_store(f"sqlite:///{path}", max_attachment_bytes=100)
    assert str(path) in str(caught.value)


async def test_non_sqlite_url_is_refused_at_start() -> None:
    with pytest.raises(StorageError, match="only sqlite:///"):
        await open_store("mysql://localhost/phi4bot", max_attachment_bytes=100)


async def test_using_a_closed_store_says_so(store_url: str) -> None:
    store = store_for(store_url, max_attachment_bytes=100)
    await store.open()
    await store.close()
    await store.close()
    with pytest.raises(StorageError, match="not open"):
        await store.get_setting(1, "system_prompt")


@pytest.mark.parametrize("implementation", [SQLiteStore, PostgresStore])
def test_each_store_implements_every_method_of_the_interface_with_its_signature(
    implementation: type,
) -> None:
    wanted = {
        name: inspect.signature(member)
        for name, member in vars(Store).items()
        if inspect.iscoroutinefunction(member)
    }
    assert "history" in wanted
    for name, signature in wanted.items():
        assert inspect.signature(getattr(implementation, name)) == signature, name


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "POSTGRESQL"])
def test_a_postgresql_url_selects_the_postgresql_store(scheme: str) -> None:
    store = store_for(f"{scheme}://bot@db.example:5432/phi4bot", max_attachment_bytes=1)
    assert isinstance(store, PostgresStore)
    assert isinstance(store_for("sqlite:///bot.db", max_attachment_bytes=1), SQLiteStore)


async def test_unreachable_postgresql_is_one_sentence_without_the_password() -> None:
    with pytest.raises(StorageError) as caught:
        await open_store("postgresql://bot:hunter2@127.0.0.1:1/phi4bot", max_attachment_bytes=1)
    message = str(caught.value)
    assert message.startswith("Cannot reach PostgreSQL at postgresql://bot@127.0.0.1:1/phi4bot: ")
    assert "refused" in message
    assert "hunter2" not in message
    assert "\n" not in message


async def test_unknown_postgresql_host_is_one_sentence() -> None:
    with pytest.raises(StorageError, match=r"db\.invalid:5432/phi4bot: its host name does not"):
        await open_store("postgres://bot@db.invalid:5432/phi4bot", max_attachment_bytes=1)


async def test_missing_postgresql_database_says_to_create_it(postgres_database: str) -> None:
    url = with_database(postgres_database, "phi4bot_no_such_database")
    with pytest.raises(StorageError, match="that database does not exist") as caught:
        await open_store(url, max_attachment_bytes=1)
    assert "phi4bot_no_such_database" in str(caught.value)


async def test_postgresql_url_options_reach_every_connection(postgres_url: str) -> None:
    async with opened_store(postgres_url + "&application_name=phi4bot-test") as store:
        assert isinstance(store, PostgresStore)
        assert await store.get_setting(1, "system_prompt") is None
        assert store._pool is not None
        async with store._pool.acquire() as db:
            assert await db.fetchval("SHOW application_name") == "phi4bot-test"
