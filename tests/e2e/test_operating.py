"""Operating the bot: /metrics moves with the answers, /readyz follows the backend, JSON logs.

The real `phi4bot run` serves its metrics port on 127.0.0.1; the test scrapes it like
Prometheus would, while the fake Telegram and the fake model serve the answers.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.bot_process import TOKEN, BotProcess
from tests.e2e.conftest import StartBot
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

API_KEY = "sk-operating-secret-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Scraper:
    """Reads the bot's metrics port as a Prometheus server and a load balancer would."""

    def __init__(self, port: int) -> None:
        self.root = f"http://127.0.0.1:{port}"

    async def get(self, path: str) -> tuple[int, str]:
        timeout = aiohttp.ClientTimeout(total=15)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self.root + path) as response,
        ):
            return response.status, await response.text()

    async def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        status, text = await self.get("/metrics")
        assert status == 200
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    async def value(self, name: str, **labels: str) -> float:
        return (await self.samples()).get((name, frozenset(labels.items())), 0.0)

    async def ready(self) -> tuple[int, dict[str, Any]]:
        status, text = await self.get("/readyz")
        return status, json.loads(text)


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float, what: str) -> None:
    """Wait until `check()` holds, asking again every 0.1 s."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def start_with_metrics(start_bot: StartBot, **env: str) -> tuple[Scraper, BotProcess]:
    port = free_port()
    bot = await start_bot(PHI4BOT_METRICS_PORT=str(port), **env)
    scraper = Scraper(port)

    async def serving() -> bool:
        try:
            return (await scraper.get("/healthz"))[0] == 200
        except aiohttp.ClientError:
            return False

    await eventually(serving, timeout=15, what="/healthz")
    return scraper, bot


async def test_metrics_follow_answers_429s_and_backend_errors_and_logs_are_json(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.api_key = API_KEY
    model.answer = "One two three four five six seven eight nine ten."
    model.pause_after = 2  # hold each stream after two chunks, to scrape it mid-answer
    metrics, bot = await start_with_metrics(start_bot, LOG_FORMAT="json", OPENAI_API_KEY=API_KEY)
    alice = tg.private_user(42, "Alice")
    sent = await metrics.value(
        "phi4bot_telegram_requests_total", method="sendMessage", outcome="ok"
    )

    # One answer, scraped while it streams.
    tg.send_text(alice.chat, alice, "Count to ten, please.")

    async def streaming() -> bool:
        return await metrics.value("phi4bot_answers_streaming") == 1

    await eventually(streaming, timeout=10, what="an answer streaming")
    await tg.wait_until(lambda: tg.messages(42), timeout=10, what="the first text")
    model.resume()
    await tg.wait_until(lambda: tg.text_of(42) == model.answer, timeout=15, what="the answer")

    async def answered() -> bool:
        return await metrics.value("phi4bot_turns_total", outcome="answered") == 1

    await eventually(answered, timeout=10, what="the answer counted")
    after_one = await metrics.samples()

    def at(name: str, **labels: str) -> float:
        return after_one.get((name, frozenset(labels.items())), 0.0)

    assert at("phi4bot_answers_streaming") == 0
    assert at("phi4bot_updates_total", kind="text") == 1
    assert at("phi4bot_time_to_first_text_seconds_count") == 1
    assert 0 < at("phi4bot_time_to_first_text_seconds_sum") < 10
    assert at("phi4bot_first_chunk_to_visible_seconds_count") == 1
    assert at("phi4bot_answer_duration_seconds_count") == 1
    assert at("phi4bot_answer_length_characters_sum") == len(model.answer)
    assert at("phi4bot_backend_requests_total", backend="openai", replica="", outcome="ok") == 1
    assert at("phi4bot_backend_first_chunk_seconds_count", backend="openai", replica="") == 1
    assert at("phi4bot_telegram_requests_total", method="sendMessage", outcome="ok") > sent
    assert at("phi4bot_telegram_requests_total", method="getUpdates", outcome="ok") >= 1
    assert at("phi4bot_telegram_budget_limit") == 28  # 30/s with 5 % to spare
    assert at("phi4bot_database_operation_seconds_count", operation="record_user_turn") == 1
    assert at("phi4bot_database_operation_seconds_count", operation="finish_answer") == 1

    # A 429 from Telegram, served on an edit of the second answer.
    model.pause_after = None
    model.chunk_delay = 0.1
    tg.fail_next(1, 429, method="editMessageText", retry_after=1)
    tg.send_text(alice.chat, alice, "Again, please.")

    async def penalised_and_answered() -> bool:
        done = await metrics.value("phi4bot_turns_total", outcome="answered") == 2
        limited = await metrics.value(
            "phi4bot_telegram_requests_total", method="editMessageText", outcome="429"
        )
        return done and limited == 1

    await eventually(penalised_and_answered, timeout=20, what="a 429 and the second answer")
    assert tg.messages(42)[-1].text == model.answer, "the final text arrives despite the 429"

    # The model fails: the turn is failed, the backend request carries the error class.
    model.down = True
    tg.send_text(alice.chat, alice, "And once more?")

    async def failed() -> bool:
        return await metrics.value("phi4bot_turns_total", outcome="failed") == 1

    await eventually(failed, timeout=20, what="the failed turn counted")
    samples = await metrics.samples()
    errors = {
        dict(labels)["outcome"]: value
        for (name, labels), value in samples.items()
        if name == "phi4bot_backend_requests_total" and dict(labels)["outcome"] != "ok"
    }
    assert errors == {"BackendUnavailable": 1}
    assert samples[("phi4bot_updates_total", frozenset({("kind", "text")}))] == 3
    assert not any("chat" in k or "user" in k for _, labels in samples for k, _ in labels)

    lines = [line for line in bot.log().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    assert any("conversation_id" in entry and "turn_id" in entry for entry in entries)
    text = "\n".join(lines)
    assert TOKEN not in text
    assert API_KEY not in text


async def test_readyz_follows_the_backend_going_down_and_coming_back(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    metrics, _ = await start_with_metrics(start_bot)

    def readiness(expected: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return (await metrics.ready())[0] == expected

        return check

    await eventually(readiness(200), timeout=15, what="ready")
    status, body = await metrics.ready()
    assert status == 200
    assert body == {
        "ready": True,
        "checks": {"database": "ok", "telegram": "ok", "backend": "ok"},
    }

    model.down = True
    await eventually(readiness(503), timeout=20, what="not ready")
    status, body = await metrics.ready()
    assert status == 503
    assert body["ready"] is False
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["telegram"] == "ok"
    assert body["reason"].startswith("backend: no usable backend: BackendUnavailable")
    assert (await metrics.get("/healthz"))[0] == 200, "alive, though not ready"

    model.down = False
    await eventually(readiness(200), timeout=20, what="ready again")


async def test_a_metrics_port_in_use_stops_the_start_with_one_line(
    tg: FakeTelegram, start_bot: StartBot
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bot = await start_bot(PHI4BOT_METRICS_PORT=str(port), wait=False)
        assert bot.proc is not None
        code = await asyncio.wait_for(bot.proc.wait(), 30)
    assert code == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}" in bot.log()
    assert "Traceback" not in bot.log()
