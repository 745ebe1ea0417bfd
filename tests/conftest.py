"""Fixtures shared by the whole suite: the store under test on each engine, and the markers
that let the fast part run alone (`pytest -m "not real"`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

import pytest

from storage import Store, store_for
from tests.databases import fresh_schema, postgres_session_database
from tests.fake_clock import CountingEventLoop

ENGINES = ("sqlite", "postgres")
REAL_SERVER_FIXTURES = {
    "postgres_database",
    "postgres_url",
    "gradio_server",
    "gradio_env",
    "llama_server",
    "llama_env",
}
REAL_SERVER_FOLDERS = ("real", "real_gradio", "real_llama")
SERVER_GROUPS = {"gradio_server": "gradio", "llama_server": "llama"}
"""Tests sharing a session-wide server run on one xdist worker, so it is started once."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what talks to a real server (`real`: PostgreSQL, Gradio, llama.cpp) and what runs
    the bot's process (`e2e`), from where a test lives and what it uses, so no test can
    forget its marker."""
    for item in items:
        parts = item.path.relative_to(Path(__file__).parent).parts
        params = getattr(getattr(item, "callspec", None), "params", {})
        uses = set(getattr(item, "fixturenames", ()))
        if (
            parts[0] in REAL_SERVER_FOLDERS
            or uses & REAL_SERVER_FIXTURES
            or "postgres" in params.values()
        ):
            item.add_marker(pytest.mark.real)
        if parts[0] == "e2e":
            item.add_marker(pytest.mark.e2e)
        for fixture, group in SERVER_GROUPS.items():
            if fixture in uses:
                item.add_marker(pytest.mark.xdist_group(group))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: four workers a core, from 4 to 16. Most of the suite's time is spent
    waiting (Telegram's pacing, streamed chunks), not computing: run one after the other,
    the tests of `-m "not real"` used 2.4 min of CPU in 12.9 min."""
    return min(16, max(4, 4 * (os.cpu_count() or 1)))


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Tests marked `virtual_time` run on the loop a `FakeClock` can see idle; the rest on
    asyncio's default loop."""
    if item.get_closest_marker("virtual_time") is not None:
        return {"counting": CountingEventLoop}
    return {"asyncio": asyncio.new_event_loop}


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
