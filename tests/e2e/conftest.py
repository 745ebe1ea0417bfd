"""Fixtures that start the fakes on 127.0.0.1 and the real bot process against them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.bot_process import TOKEN, BotProcess
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.space import FakeSpace
from tests.fakes.telegram import FakeTelegram

BOT_USERNAME = "phi4_test_bot"

StartBot = Callable[..., Awaitable[BotProcess]]


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username=BOT_USERNAME) as fake:
        yield fake


@pytest.fixture
async def model() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        server.chunk_delay = 0.02
        yield server


@pytest.fixture
async def space() -> AsyncIterator[FakeSpace]:
    async with FakeSpace() as fake:
        yield fake


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the newest user message an OpenAI request carried."""
    content = next(m for m in reversed(body["messages"]) if m["role"] == "user")["content"]
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content if p.get("type") == "text")


@pytest.fixture
async def start_bot(
    tmp_path: Path, tg: FakeTelegram, model: FakeOpenAIServer
) -> AsyncIterator[StartBot]:
    """Start `phi4bot run` (OpenAI backend by default) and wait until it long-polls.

    Keyword arguments become environment variables (`prefix` is a command the bot is run
    under, such as `unshare`); the database lives in `tmp_path`
    and is shared by every start within one test, so restarts keep their history.
    """
    started: list[BotProcess] = []

    async def start(
        *args: str, wait: bool = True, prefix: tuple[str, ...] = (), **env: str
    ) -> BotProcess:
        settings = {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": tg.url,
            "PHI4_BACKEND": "openai",
            "OPENAI_BASE_URL": model.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "PHI4BOT_EDIT_INTERVAL": "0.3",
            "PHI4BOT_GROUP_EDIT_INTERVAL": "0.5",
            "PHI4BOT_STREAM_TIMEOUT": "10",
            # media without a caption is answered at once unless a test is about the wait
            "PHI4BOT_MEDIA_WAIT": "0",
            "LOG_LEVEL": "DEBUG",
        }
        settings.update(env)
        polls = tg.stats.requests["getUpdates"]
        bot = await BotProcess(settings, tmp_path / "bot.log", args=args, prefix=prefix).start()
        started.append(bot)
        if wait:
            await tg.wait_until(
                lambda: tg.stats.requests["getUpdates"] > polls or not bot.running,
                timeout=30,
                what="the bot polling",
            )
            assert bot.running, f"the bot exited early:\n{bot.log()}"
        return bot

    yield start
    for bot in started:
        await bot.kill()  # a bot that exited by itself still has its log file open
    log = (
        (tmp_path / "bot.log").read_text(errors="replace")
        if (tmp_path / "bot.log").exists()
        else ""
    )
    assert TOKEN not in log, "the bot token leaked into the log"
