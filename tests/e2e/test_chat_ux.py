"""What people expect of a chat bot end to end: formatting past Telegram's entity limit,
commands done once, buttons under answers, their language, edits and quoted replies."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.e2e.conftest import StartBot
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram


async def test_an_answer_with_300_entities_is_fully_formatted_over_several_messages(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = " ".join(f"**w{n}**" for n in range(300))
    model.chunk_size = 200
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "bold words please")

    def all_bold() -> bool:
        return sum(len(m.entities) for m in tg.messages(42)) == 300

    await tg.wait_until(all_bold, timeout=15, what="all 300 entities shown")
    messages = tg.messages(42)
    assert len(messages) == 3
    assert all(len(m.entities) <= 100 for m in messages)
    assert " ".join(m.text for m in messages) == " ".join(f"w{n}" for n in range(300))


async def test_a_new_command_delivered_again_after_a_crash_is_carried_out_once(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, tmp_path: Path
) -> None:
    model.answer = "hello"
    bot = await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "hi")
    await tg.wait_until(lambda: tg.text_of(42) == "hello", timeout=10)
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    # The poll that would confirm /new hangs, so Telegram delivers it again after the crash.
    tg.delay_next(1, 120, method="getUpdates")
    tg.send_text(alice.chat, alice, "/new")
    await tg.wait_until(lambda: "New conversation" in tg.text_of(42), timeout=10)
    await bot.kill()
    assert tg.pending_updates == 1

    polls = tg.stats.requests["getUpdates"]
    await start_bot()
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=15)
    await tg.wait_until(lambda: tg.stats.requests["getUpdates"] >= polls + 2, timeout=15)
    assert sum("New conversation" in m.text for m in tg.messages(42)) == 1
    with sqlite3.connect(tmp_path / "bot.db") as db:
        (conversations,) = db.execute(
            "SELECT count(*) FROM conversations WHERE chat_id = 42"
        ).fetchone()
    assert conversations == 2, "one conversation before /new and one after it"
