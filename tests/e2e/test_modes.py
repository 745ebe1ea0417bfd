"""Ways of running and streaming: webhook, native drafts, the Space's queue, graceful stop."""

from __future__ import annotations

import asyncio
import socket

import aiohttp

from tests.e2e.conftest import StartBot
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.space import FakeSpace
from tests.fakes.telegram import FakeTelegram


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_listening(session: aiohttp.ClientSession, url: str) -> None:
    """The webhook server may start a moment after setWebhook; poll until it accepts."""
    async with asyncio.timeout(15):
        while True:
            try:
                async with session.get(url):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)


async def test_behind_a_webhook_updates_need_the_secret_token(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "via webhook"
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    await start_bot(
        "--webhook-url",
        url,
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        wait=False,
        PHI4BOT_WEBHOOK_SECRET="s3cret-webhook-token",
    )
    await tg.wait_until(lambda: tg.webhook.get("url") == url, timeout=30, what="setWebhook")
    assert tg.webhook["secret_token"] == "s3cret-webhook-token"

    async with aiohttp.ClientSession() as session:
        await wait_listening(session, url)
        forged = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": 5, "type": "private"},
                "text": "hi",
            },
        }
        async with session.post(url, json=forged) as response:
            assert response.status == 403
        async with session.post(
            url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}
        ) as response:
            assert response.status == 403

    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "hello over the webhook")
    await tg.wait_until(lambda: tg.text_of(42) == "via webhook", timeout=15)
    assert tg.messages(5) == []


async def test_draft_mode_streams_drafts_then_sends_the_final_message(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "Drafts are **animated** and then final. " * 3
    model.chunk_size = 5
    model.chunk_delay = 0.1  # 2.4 s: the typing indicator took one of the chat's slots
    await start_bot(PHI4BOT_PRIVATE_STREAMING="draft")
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "show me")
    final = ("Drafts are animated and then final. " * 3).strip()
    await tg.wait_until(lambda: tg.text_of(42) == final, timeout=15)
    drafts = tg.drafts(42)
    assert len(drafts) >= 2 and len({d.text for d in drafts}) == len(drafts)
    (message,) = tg.messages(42)
    assert message.edits == 0, "in draft mode the answer arrives as one final message"


async def test_the_space_queue_position_is_shown_until_the_answer_starts(
    tg: FakeTelegram, space: FakeSpace, start_bot: StartBot
) -> None:
    space.answer = "Your turn came."
    space.queue_ahead = 2
    space.queue_delay = 1.2
    await start_bot(PHI4_BACKEND="space", PHI4_SPACE_URL=space.url)
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "hello Space")
    await tg.wait_until(lambda: "In queue" in tg.text_of(42), timeout=15)
    await tg.wait_until(lambda: tg.text_of(42) == "Your turn came.", timeout=20)
    (message,) = tg.messages(42)
    assert any("In queue: position" in text for _, text in message.history)
    assert tg.chat_actions(42), "typing is shown while waiting"


async def test_sigterm_mid_answer_stops_it_cleanly_and_records_it(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "first part and then a lot more"
    model.chunk_size = 5
    model.pause_after = 2
    bot = await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "go")
    await tg.wait_until(lambda: tg.text_of(42) == "first part", timeout=10)
    assert await bot.stop() == 0
    assert "restarting" in tg.text_of(42)
    assert tg.text_of(42).startswith("first part"), tg.text_of(42)

    model.pause_after = None
    model.answer = "next"
    await start_bot()
    tg.send_text(alice.chat, alice, "and now?")
    await tg.wait_until(lambda: tg.messages(42)[-1].text == "next", timeout=10)
    roles = [m["role"] for m in model.chat_requests[-1].json["messages"]]
    assert roles == ["system", "user", "assistant", "user"], "the stopped answer stays in context"
    assert "interrupted" not in tg.text_of(42).lower(), "a clean stop is not a crash"


async def test_the_daily_quota_refuses_politely_and_stores_nothing(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "ok"
    await start_bot(PHI4BOT_USER_DAILY_QUOTA="2")
    alice = tg.private_user(42, "Alice")
    for n in range(3):
        tg.send_text(alice.chat, alice, f"message {n}")
        await tg.wait_until(lambda n=n: len(tg.messages(42)) == n + 1, timeout=10)  # type: ignore[misc]
    assert "limit" in tg.messages(42)[-1].text
    assert len(model.chat_requests) == 2
