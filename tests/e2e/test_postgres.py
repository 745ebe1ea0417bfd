"""The real bot on PostgreSQL: conversations survive restarts and crashes as on SQLite, and a
server it cannot reach stops it with one line."""

from __future__ import annotations

import asyncio

from tests.e2e.checkpoints import answer_checkpointed
from tests.e2e.conftest import StartBot, last_user_text
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram


async def test_a_conversation_on_postgresql_survives_a_restart_and_a_crash(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, postgres_url: str
) -> None:
    model.reply = lambda body: f"echo: {last_user_text(body)}"
    bot = await start_bot(DATABASE_URL=postgres_url)
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "My name is Alice.")
    await tg.wait_until(lambda: tg.text_of(42) == "echo: My name is Alice.", timeout=10)
    assert await bot.stop() == 0

    model.reply = None
    model.answer = "alpha beta gamma delta epsilon"
    model.chunk_size = 6
    model.pause_after = 2
    bot = await start_bot(DATABASE_URL=postgres_url)
    tg.send_text(alice.chat, alice, "What is my name?")
    await tg.wait_until(lambda: len(tg.messages(42)) == 2, timeout=10)
    await answer_checkpointed(postgres_url, tg.messages(42)[-1].message_id)
    await bot.kill()

    model.pause_after = None
    model.answer = "You are Alice."
    await start_bot(DATABASE_URL=postgres_url)
    await tg.wait_until(lambda: "/retry" in tg.messages(42)[-1].text, timeout=15)
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    tg.send_text(alice.chat, alice, "/retry")
    await tg.wait_until(lambda: tg.messages(42)[-1].text == "You are Alice.", timeout=10)
    history = [
        (m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]["text"])
        for m in model.chat_requests[-1].json["messages"][1:]
    ]
    assert history == [
        ("user", "My name is Alice."),
        ("assistant", "echo: My name is Alice."),
        ("user", "What is my name?"),
    ]


async def test_an_unreachable_postgresql_stops_the_bot_with_one_line(
    tg: FakeTelegram, start_bot: StartBot
) -> None:
    bot = await start_bot(
        wait=False, DATABASE_URL="postgresql://phi4bot:hunter2@127.0.0.1:1/phi4bot"
    )
    assert bot.proc is not None
    assert await asyncio.wait_for(bot.proc.wait(), 30) == 2
    log = bot.log()
    assert (
        "phi4bot: Cannot reach PostgreSQL at postgresql://phi4bot@127.0.0.1:1/phi4bot: "
        "the connection was refused (is the server running, on that port?).\n"
    ) in log
    assert "hunter2" not in log
    assert "Traceback" not in log
