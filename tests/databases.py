"""Test databases on both engines: a PostgreSQL database of its own per test session, a fresh
schema in it per test, and raw reads of either engine for assertions.

PostgreSQL tests read `PHI4BOT_TEST_POSTGRES_URL` (default
`postgresql://postgres@127.0.0.1:5432/test`). The session creates a database with a random
name beside that one and drops it at the end, so parallel runs on one server never meet.
Without a reachable server the tests are skipped with the reason; `PHI4BOT_REQUIRE_POSTGRES=1`
makes that a failure instead (CI sets it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiosqlite
import asyncpg
import pytest

from storage import Store, database_engine, open_store, parse_database_url
from storage.url import redact

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT = 5.0


def postgres_admin_url() -> str:
    return os.environ.get("PHI4BOT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def postgres_required() -> bool:
    return os.environ.get("PHI4BOT_REQUIRE_POSTGRES", "") not in ("", "0")


def with_database(url: str, database: str, **options: str) -> str:
    """The same server and login, another database, with `options` (such as a search_path)
    added to the URL's query."""
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query), *options.items()])
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", query, ""))


async def _admin(sql: str, url: str) -> None:
    db = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    try:
        await db.execute(sql)
    finally:
        await db.close()


@contextlib.contextmanager
def postgres_session_database() -> Iterator[str]:
    """A new, empty database for this test session (its URL), dropped afterwards; skips, or
    fails under PHI4BOT_REQUIRE_POSTGRES=1, when the server cannot be reached."""
    admin = postgres_admin_url()
    name = f"phi4bot_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"', admin))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = (
            f"PostgreSQL at {redact(admin)} is not usable for tests ({type(exc).__name__}: "
            f"{exc}); set PHI4BOT_TEST_POSTGRES_URL to a server where CREATE DATABASE works"
        )
        if postgres_required():
            pytest.fail(f"{reason} (PHI4BOT_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(reason)
    try:
        yield with_database(admin, name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin))


@contextlib.contextmanager
def fresh_schema(database_url: str) -> Iterator[str]:
    """A URL whose connections work in a new, empty schema of the database (dropped after),
    so each test starts from nothing without the cost of a database per test."""
    schema = f"t_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE SCHEMA "{schema}"', database_url))
    parts = urlsplit(database_url)
    try:
        yield with_database(database_url, parts.path.lstrip("/"), search_path=schema)
    finally:
        asyncio.run(_admin(f'DROP SCHEMA "{schema}" CASCADE', database_url))


async def fetch_all(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Every row `sql` returns, read beside the store under test (the same SQL works on
    both engines for what the tests read)."""
    if database_engine(url) == "sqlite":
        async with aiosqlite.connect(parse_database_url(url)) as db:
            return [tuple(row) for row in await db.execute_fetchall(sql)]
    pg = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    try:
        return [tuple(row) for row in await pg.fetch(sql)]
    finally:
        await pg.close()


async def scalar(url: str, sql: str) -> Any:
    """The first column of the first row `sql` returns."""
    return (await fetch_all(url, sql))[0][0]


async def table_names(url: str) -> set[str]:
    """The tables of the database (on PostgreSQL: of the URL's schema)."""
    if database_engine(url) == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    return {row[0] for row in await fetch_all(url, sql)}


async def execute(url: str, sql: str, *args: Any) -> None:
    """Run one statement beside the store under test; `?` marks parameters on both engines."""
    if database_engine(url) == "sqlite":
        async with aiosqlite.connect(parse_database_url(url)) as db:
            await db.execute(sql, args)
            await db.commit()
        return
    numbered = sql
    for n in range(1, len(args) + 1):
        numbered = numbered.replace("?", f"${n}", 1)
    pg = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    try:
        await pg.execute(numbered, *args)
    finally:
        await pg.close()


@contextlib.asynccontextmanager
async def opened_store(url: str, *, max_attachment_bytes: int = 1000) -> AsyncIterator[Store]:
    """The store `url` names, open for the block: a process's life, for tests that start
    more than one on the same database."""
    store = await open_store(url, max_attachment_bytes=max_attachment_bytes)
    try:
        yield store
    finally:
        await store.close()
