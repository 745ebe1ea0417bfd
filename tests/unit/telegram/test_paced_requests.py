"""No Bot API request reaches Telegram without a slot of the bot's one `RateBudget`.

The whole application runs in this process against the fakes, and the HTTP layer every
request goes through checks, for each one, that it is sent in a slot of the budget the
application was built with: commands, typing, streamed answers with their buttons, button
presses, albums, file downloads and a document.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import metrics
from bot.config import Settings
from bot.telegram.aiohttp_request import api_method
from bot.telegram.app import build_application
from bot.telegram.metered_request import MeteredRequest
from bot.telegram.streaming.pacing import RateBudget, held_slot_spent
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_jpeg

TOKEN = "123456:TEST-token"
BOT_USERNAME = "phi4_test_bot"
REGENERATE = "🔄 Regenerate"
# Not Bot API methods the budget paces: the long poll (PTB never rate-limits it) and
# file downloads from the file server.
UNPACED = {"getUpdates", "downloadFile"}


class Requests:
    """(method, sent in a slot of the application's budget) for every request the HTTP
    layer sends, once the application's budget is known."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bool]] = []
        self.budget: RateBudget | None = None


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Requests:
    seen = Requests()
    real = MeteredRequest.do_request

    async def watched(self: MeteredRequest, url: str, method: str, *a: Any, **k: Any) -> Any:
        name = api_method(url)
        if name not in UNPACED:
            assert seen.budget is not None
            seen.sent.append((name, held_slot_spent(seen.budget)))
        return await real(self, url, method, *a, **k)

    monkeypatch.setattr(MeteredRequest, "do_request", watched)
    monkeypatch.setattr(metrics, "stop_recording", lambda: None)  # other tests read them
    monkeypatch.setattr(gc, "freeze", lambda: None)  # this process lives on after the bot
    return seen


@pytest.fixture
async def running(
    tmp_path: Path, requests: Requests
) -> AsyncIterator[tuple[FakeTelegram, FakeOpenAIServer]]:
    """The application polling the fake Telegram, answering from the fake OpenAI server."""
    async with (
        FakeTelegram(token=TOKEN, bot_username=BOT_USERNAME) as tg,
        FakeOpenAIServer() as model,
    ):
        settings = Settings(
            _env_file=None,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=tg.url,
            PHI4_BACKEND="openai",
            OPENAI_BASE_URL=model.base_url,
            DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
            PHI4BOT_ADMINS="42",
        )
        application = build_application(settings)
        requests.budget = application.bot_data.budget
        await application.initialize()
        assert application.post_init is not None
        await application.post_init(application)
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=1)
        await application.start()
        try:
            yield tg, model
        finally:
            await application.updater.stop()
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
            await application.shutdown()
            if application.post_shutdown is not None:
                await application.post_shutdown(application)


async def test_every_request_of_a_busy_session_passes_the_budget(
    running: tuple[FakeTelegram, FakeOpenAIServer], requests: Requests
) -> None:
    tg, model = running
    model.reply = lambda body: f"answer {len(model.chat_requests)}"
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "/help")
    model.first_chunk_delay = 2.5  # long enough for the typing indicator
    tg.send_text(alice.chat, alice, "a question")
    await tg.wait_until(lambda: any(m.buttons == [REGENERATE] for m in tg.messages(42)))
    answer = next(m for m in tg.messages(42) if m.buttons == [REGENERATE])
    model.first_chunk_delay = 0.0
    query = tg.press_button(alice.chat, alice, answer.message_id, REGENERATE)
    await tg.wait_until(lambda: tg.press(query).answered and answer.text == "answer 2")
    album = [make_jpeg(64, 48), make_jpeg(48, 64)]
    tg.send_photo(alice.chat, alice, album[0], caption="compare these", media_group_id="a1")
    tg.send_photo(alice.chat, alice, album[1], media_group_id="a1")
    await tg.wait_until(lambda: len(model.chat_requests) == 3, what="the album answered")
    await tg.wait_until(lambda: tg.messages(42)[-1].text == "answer 3")
    tg.send_text(alice.chat, alice, "/export")
    await tg.wait_until(lambda: tg.documents(42), what="the exported conversation")
    group = tg.group(title="Team")
    tg.send_text(group, alice, f"@{BOT_USERNAME} and here?")
    await tg.wait_until(lambda: tg.text_of(group.id) == "answer 4")

    methods = {name for name, _ in requests.sent}
    assert {
        "getMe",
        "setMyCommands",
        "sendChatAction",
        "sendMessage",
        "editMessageText",
        "answerCallbackQuery",
        "getFile",
        "sendDocument",
    } <= methods
    unpaced = [name for name, in_slot in requests.sent if not in_slot]
    assert unpaced == [], f"sent without a slot of the budget: {unpaced}"
    assert tg.stats.flood_429 == 0


def test_the_check_itself_tells_a_spent_slot_from_none() -> None:
    budget = RateBudget()
    assert not held_slot_spent(budget)
    with budget.granted(7):
        assert not held_slot_spent(budget), "held but not yet spent on a request"
        assert budget.claim(7)
        assert held_slot_spent(budget)
    assert not held_slot_spent(budget)
