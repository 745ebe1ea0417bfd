"""Engine errors read as failures that may pass (and which), or not: on real databases."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from storage import StoreUnavailable, Unavailability, store_unavailable
from storage.postgres.connection import create_pool

ACTIVE = "SELECT state = 'active' FROM pg_stat_activity WHERE pid = $1"


def sqlite_error(target: str, sql: str, *, max_pages: int | None = None) -> sqlite3.Error:
    """What SQLite raises for `sql` on a connection of its own to `target` (a path or URI)."""
    db = sqlite3.connect(target, isolation_level=None, timeout=0, uri=target.startswith("file:"))
    with contextlib.closing(db), pytest.raises(sqlite3.Error) as raised:
        if max_pages is not None:  # this connection's limit: a disk full at this size
            db.execute(f"PRAGMA max_page_count = {max_pages}")
        db.execute(sql)
    return raised.value


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "bot.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE t (x)")
    return path


def reason(exc: BaseException) -> Unavailability | None:
    found = store_unavailable(exc)
    return None if found is None else found.reason


def test_sqlite_busy_is_a_lock(database: Path) -> None:
    with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as holder:
        holder.execute("BEGIN EXCLUSIVE")
        error = sqlite_error(str(database), "INSERT INTO t VALUES (1)")
        assert reason(error) is Unavailability.LOCKED


def test_sqlite_full_is_a_full_disk(database: Path) -> None:
    pages = sqlite3.connect(database).execute("PRAGMA page_count").fetchone()[0]
    error = sqlite_error(
        str(database), "INSERT INTO t VALUES (randomblob(100000))", max_pages=pages
    )
    assert reason(error) is Unavailability.FULL


def test_a_read_only_sqlite_file_is_read_only(database: Path) -> None:
    error = sqlite_error(f"file:{database}?mode=ro", "INSERT INTO t VALUES (1)")
    assert reason(error) is Unavailability.READ_ONLY


def test_mistakes_are_not_retried(database: Path) -> None:
    assert reason(sqlite_error(str(database), "INSERT INTO nowhere VALUES (1)")) is None
    assert reason(sqlite_error(str(database), "SELECT full_or_locked FROM t")) is None
    assert reason(sqlite3.IntegrityError("UNIQUE constraint failed")) is None
    assert reason(ValueError("a bug")) is None


def test_each_reason_reads_its_own_words() -> None:
    found = StoreUnavailable(Unavailability.FULL, "database or disk is full")
    assert str(found) == "the disk is full (database or disk is full)"
    assert store_unavailable(found) is found
    assert len({reason.value for reason in Unavailability}) == len(Unavailability)


async def test_postgresql_refused_connections_and_timeouts(postgres_url: str) -> None:
    with pytest.raises(OSError) as refused:
        await asyncpg.connect("postgresql://postgres@127.0.0.1:1/x", timeout=5)
    assert reason(refused.value) is Unavailability.UNREACHABLE
    pool = await create_pool(postgres_url)
    try:
        async with pool.acquire() as db:
            assert await db.fetchval("SHOW statement_timeout") == "30s"
            await db.execute("SET statement_timeout = 50")
            with pytest.raises(asyncpg.QueryCanceledError) as cancelled:
                await db.execute("SELECT pg_sleep(2)")
            assert reason(cancelled.value) is Unavailability.TIMEOUT
            pid = await db.fetchval("SELECT pg_backend_pid()")
            # back to the pool's 30 s: at 50 ms the query was over before it was seen running
            await db.execute("RESET statement_timeout")
            sleeping = asyncio.create_task(db.fetchval("SELECT pg_sleep(20)"))  # until killed
            killer = await asyncpg.connect(postgres_url)
            try:
                async with asyncio.timeout(15):
                    while not await killer.fetchval(ACTIVE, pid):
                        await asyncio.sleep(0.01)
                await killer.execute("SELECT pg_terminate_backend($1)", pid)  # a restart
            finally:
                await killer.close()
            with pytest.raises(Exception) as lost:
                await sleeping
            assert reason(lost.value) is Unavailability.UNREACHABLE, repr(lost.value)
        async with pool.acquire() as db:  # the pool replaced the lost connection by itself
            assert await db.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


async def test_a_statement_timeout_in_the_url_wins(postgres_url: str) -> None:
    pool = await create_pool(f"{postgres_url}&statement_timeout=1234")
    try:
        async with pool.acquire() as db:
            assert await db.fetchval("SHOW statement_timeout") == "1234ms"
    finally:
        await pool.close()
