"""Crashes, faults and strangers end to end: nothing lost, nothing doubled, nobody let in."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

from tests.databases import scalar
from tests.e2e.bot_process import ROOT, TOKEN
from tests.e2e.checkpoints import answer_checkpointed
from tests.e2e.conftest import StartBot, last_user_text
from tests.e2e.test_media import parts_of
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_jpeg


async def test_without_a_token_run_exits_with_one_clear_line(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode != 0
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "TELEGRAM_BOT_TOKEN" in lines[0]


async def test_killed_mid_answer_the_turn_is_kept_and_the_chat_told_to_retry(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, tmp_path: Path
) -> None:
    model.answer = "alpha beta gamma delta epsilon"
    model.chunk_size = 6
    model.pause_after = 2
    bot = await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "tell me")
    await tg.wait_until(lambda: tg.messages(42), timeout=10)

    def answer_stored() -> bool:
        # the request leaves before the answer's row is written: killed before that, the
        # turn is still waiting and is answered afresh; here the answer was under way
        with sqlite3.connect(tmp_path / "bot.db") as db:
            row = db.execute("SELECT 1 FROM turns WHERE role = 'assistant'").fetchone()
        return row is not None

    async with asyncio.timeout(5):
        while not answer_stored():
            await asyncio.sleep(0.02)
    await bot.kill()

    model.pause_after = None
    model.answer = "full answer"
    await start_bot()
    await tg.wait_until(lambda: "/retry" in tg.messages(42)[-1].text, timeout=10)
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    requests_before = len(model.chat_requests)
    tg.send_text(alice.chat, alice, "/retry")
    await tg.wait_until(lambda: tg.messages(42)[-1].text == "full answer", timeout=10)
    assert len(model.chat_requests) == requests_before + 1
    assert last_user_text(model.chat_requests[-1].json) == "tell me"


async def test_killed_mid_answer_its_text_so_far_and_message_were_stored(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, tmp_path: Path
) -> None:
    model.answer = "alpha beta gamma delta epsilon"
    model.chunk_size = 6
    model.pause_after = 2
    bot = await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "tell me")
    await tg.wait_until(lambda: tg.messages(42), timeout=10)
    shown = tg.messages(42)[0].message_id
    # a new message is saved at the checkpoint writer's next tick, 0.2 s
    text = await answer_checkpointed(f"sqlite:///{tmp_path / 'bot.db'}", shown, timeout=5)
    await bot.kill()
    assert text and model.answer.startswith(text), "the text streamed so far"

    await start_bot()
    await tg.wait_until(lambda: "/retry" in tg.messages(42)[-1].text, timeout=10)
    assert tg.messages(42)[-1].reply_to == shown, "the notice answers the cut-off message"


async def test_an_update_redelivered_after_a_crash_is_answered_once(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, tmp_path: Path
) -> None:
    model.answer = "only once"
    model.pause_after = 1
    bot = await start_bot()
    alice = tg.private_user(42, "Alice")
    # The poll that would confirm the update hangs, so the update stays unconfirmed and
    # Telegram delivers it again to the next process, as after a real crash.
    tg.delay_next(1, 120, method="getUpdates")
    tg.send_text(alice.chat, alice, "hi")
    await tg.wait_until(lambda: model.chat_requests, timeout=10)
    await tg.wait_until(lambda: tg.messages(42), timeout=10)
    await answer_checkpointed(f"sqlite:///{tmp_path / 'bot.db'}", tg.messages(42)[0].message_id)
    await bot.kill()
    assert tg.pending_updates == 1

    model.pause_after = None
    polls = tg.stats.requests["getUpdates"]
    await start_bot()
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=15)
    await tg.wait_until(lambda: tg.stats.requests["getUpdates"] >= polls + 2, timeout=15)
    await tg.wait_until(lambda: "/retry" in tg.messages(42)[-1].text, timeout=10)
    assert len(model.chat_requests) == 1, "the redelivered message must not be answered again"
    tg.send_text(alice.chat, alice, "/retry")
    await tg.wait_until(lambda: tg.messages(42)[-1].text == "only once", timeout=10)
    user_turns = [m for m in model.chat_requests[-1].json["messages"] if m["role"] == "user"]
    assert len(user_turns) == 1


async def test_telegram_errors_and_resets_are_survived(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "made it through"
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.fail_next(3, status=502, method="sendMessage")
    tg.reset_next(2, method="sendMessage")
    tg.send_text(alice.chat, alice, "are you there?")
    await tg.wait_until(lambda: tg.text_of(42) == "made it through", timeout=30)
    tg.send_text(alice.chat, alice, "again")
    await tg.wait_until(lambda: len(tg.messages(42)) == 2, timeout=15)


async def test_a_stalled_backend_ends_the_answer_with_a_clear_message(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "this will stall soon"
    model.fail_next("stall", after=2)
    await start_bot(PHI4BOT_STREAM_TIMEOUT="1.5")
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "hello")
    await tg.wait_until(lambda: "stopped responding" in tg.text_of(42), timeout=15)
    assert tg.text_of(42).startswith("this wil")


async def test_strangers_cause_no_model_call_and_no_stored_turn(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "hello friend"
    await start_bot(PHI4BOT_ALLOWED_USERS="42", PHI4BOT_ADMINS="7")
    stranger = tg.private_user(99, "Mallory")
    friend = tg.private_user(42, "Alice")
    tg.send_text(stranger.chat, stranger, "give me GPU")
    tg.send_text(stranger.chat, stranger, "please")
    tg.send_text(friend.chat, friend, "hi")
    await tg.wait_until(lambda: tg.text_of(42) == "hello friend", timeout=10)
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    assert [m.text for m in tg.messages(99)] == ["Sorry, this bot is private."]
    assert len(model.chat_requests) == 1
    tg.send_text(stranger.chat, stranger, "/export")
    admin = tg.private_user(7, "Admin")
    tg.send_text(admin.chat, admin, "/export 42")
    await tg.wait_until(lambda: tg.documents(7), timeout=10)
    assert b"hello friend" in tg.documents(7)[0].data
    assert b"give me GPU" not in tg.documents(7)[0].data
    assert tg.documents(99) == []
    tg.send_text(admin.chat, admin, "/stats")
    await tg.wait_until(lambda: "42 · 1 · 1 · 1 · 0" in tg.text_of(7), timeout=10)
    assert all("Sorry" in m.text for m in tg.messages(99)), "strangers get no admin command"


async def test_the_token_never_reaches_the_log(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.fail_next("401")
    bot = await start_bot(OPENAI_API_KEY="sk-very-secret-key", LOG_LEVEL="DEBUG")
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "hi")
    await tg.wait_until(lambda: tg.messages(42), timeout=10)
    assert await bot.stop() == 0
    log = bot.log()
    assert "getUpdates" in log, "DEBUG logging should show Bot API calls"
    assert TOKEN not in log
    assert "sk-very-secret-key" not in log
    assert "sk-very-secret-key" not in tg.text_of(42)


async def test_a_message_waiting_behind_an_answer_is_answered_after_a_crash(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, tmp_path: Path
) -> None:
    model.answer = "a long answer to Anna"
    model.pause_after = 1
    bot = await start_bot()
    group = tg.group(title="Team")
    anna = tg.private_user(1, "Anna")
    ben = tg.private_user(2, "Ben")
    annas = tg.send_text(group, anna, "@phi4_test_bot first question")
    await tg.wait_until(lambda: tg.messages(group.id), timeout=10)
    bens = tg.send_text(group, ben, "@phi4_test_bot second question")

    def stored(text: str) -> bool:
        with sqlite3.connect(tmp_path / "bot.db") as db:
            rows = db.execute("SELECT count(*) FROM turns WHERE text LIKE ?", (f"%{text}%",))
            return rows.fetchone()[0] == 1

    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    async with asyncio.timeout(10):
        while not stored("second question"):
            await asyncio.sleep(0.05)
    await bot.kill()

    model.pause_after = None
    model.reply = lambda body: f"re: {last_user_text(body)}"
    await start_bot()
    await tg.wait_until(lambda: "re: Ben: second question" in tg.text_of(group.id), timeout=10)
    await tg.wait_until(lambda: "/retry" in tg.text_of(group.id), timeout=10)
    notices = [m for m in tg.messages(group.id) if "/retry" in m.text]
    assert len(notices) == 1
    cut_off = tg.messages(group.id)[0].message_id
    assert notices[0].reply_to in (annas["message_id"], cut_off), "it is about Anna's answer"
    ben_answer = next(m for m in tg.messages(group.id) if m.text == "re: Ben: second question")
    assert ben_answer.reply_to == bens["message_id"], "Ben's waiting message is answered"
    assert len(model.chat_requests) == 2


async def test_an_album_held_for_its_question_when_the_bot_crashes_is_answered_after(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, tmp_path: Path
) -> None:
    """Telegram counts the album delivered once fetched; it waits in memory for a question
    that may follow, and the crash comes then. The next start answers it, once."""
    model.answer = "two cats"
    database = f"sqlite:///{tmp_path / 'bot.db'}"
    bot = await start_bot(PHI4BOT_MEDIA_WAIT="30")
    alice = tg.private_user(42, "Alice")
    for size in ((320, 240), (240, 320)):
        tg.send_photo(alice.chat, alice, make_jpeg(*size), media_group_id="album-1")
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10, what="the album fetched")
    async with asyncio.timeout(10):
        while await scalar(database, "SELECT count(*) FROM held_messages") != 2:
            await asyncio.sleep(0.05)
    await bot.kill()
    assert model.chat_requests == [], "the album still waited for its question"

    await start_bot(PHI4BOT_MEDIA_WAIT="30")
    await tg.wait_until(lambda: tg.text_of(42) == "two cats", timeout=15)
    (request,) = model.chat_requests
    assert len(parts_of(request.json, "image_url")) == 2
    assert tg.messages(42)[0].reply_to == 1, "the answer replies to the album's first photo"
    async with asyncio.timeout(10):  # forgotten once its turn is stored
        while await scalar(database, "SELECT count(*) FROM held_messages") != 0:
            await asyncio.sleep(0.05)
