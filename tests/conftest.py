"""Fixtures shared by the whole suite: the store under test on each engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage import Store, store_for
from tests.databases import fresh_schema, postgres_session_database

ENGINES = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """This session's own PostgreSQL database (skipped when no server is reachable)."""
    with postgres_session_database() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """`DATABASE_URL` of an empty PostgreSQL schema for this test alone."""
    with fresh_schema(postgres_database) as url:
        yield url


@pytest.fixture(params=ENGINES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """`DATABASE_URL` of an empty database, once per engine: a SQLite file, or a fresh
    PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def attachment_cap() -> int:
    """The store's attachment cap; a test module may override it."""
    return 1000


@pytest.fixture
async def store(store_url: str, attachment_cap: int) -> AsyncIterator[Store]:
    """An open store on `store_url`, closed after the test."""
    opened = store_for(store_url, max_attachment_bytes=attachment_cap)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
