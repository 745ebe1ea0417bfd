"""Guest mode end to end: the bot summoned in chats it is not a member of answers there,
streamed into its one guest message.

A test runs on the other backend or database engine only where guest mode meets code that
differs there, as each e2e run costs seconds: the Space gets a guest conversation as its
Gradio history and reports queue places; PostgreSQL keeps the guest message's number in an
array column, answers under leases in the database and holds the crash checkpoint; the
voice note a summon replies to travels differently to each backend. What is the same
everywhere (refusals, pacing, the whole-answer link) runs once.

A test on PostgreSQL names `store_url` before `start_bot`: fixtures end in reverse order, so
the bot is stopped before its schema is dropped (dropping it under the running bot can
deadlock with the bot's own queries).
"""

from __future__ import annotations

import asyncio
import base64
import io
import sqlite3
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.conversation.turns import guest_key, guest_message_setting
from storage import open_store
from tests.e2e.conftest import BOT_USERNAME, StartBot, last_user_text
from tests.e2e.test_media import image_of, parts_of
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.space import FakeSpace
from tests.fakes.space_events import text_of
from tests.fakes.telegram import BotMessage, FakeTelegram
from tests.media_factory import make_jpeg, make_ogg_opus

MENTION = f"@{BOT_USERNAME}"
TABLES = ("conversations", "turns", "chat_settings")


@dataclass
class Served:
    """The model server a guest test runs on, read the same way on either backend."""

    backend: str
    model: FakeOpenAIServer
    space: FakeSpace

    def settings(self) -> dict[str, str]:
        """What points the bot at it (the OpenAI server is the bot's default)."""
        if self.backend == "space":
            return {"PHI4_BACKEND": "space", "PHI4_SPACE_URL": self.space.url}
        return {}

    def answer_with_context_size(self) -> None:
        """Answer "<n> turns": how many questions and answers the model was given, the
        newest question included (the system prompt is not a turn)."""
        if self.backend == "space":  # the Space has no system role: every message is a turn
            self.space.reply = lambda request: f"{len(request.history)} turns"
        else:
            self.model.reply = lambda body: f"{len(body['messages']) - 1} turns"

    def last_question(self) -> str:
        """The text of the newest question the model was asked."""
        if self.backend == "space":
            return text_of(self.space.requests[-1].history[-1]["content"])
        return last_user_text(self.model.chat_requests[-1].json)


async def test_a_summon_is_answered_at_once_and_streamed_into_its_guest_message(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "The **capital** of Peru is Lima. " * 6  # 50 chunks in 7.5 s:
    model.chunk_delay = 0.15  # a group-paced message shows it at 0, 3 and 6 s, then whole
    await start_bot()
    friends = tg.guest_chat()
    anna, ben = tg.private_user(1, "Anna"), tg.private_user(2, "Ben")
    tg.send_text(friends, ben, "where are we flying?")
    summon = tg.summon(friends, anna, f"{MENTION} capital of Peru?")
    await tg.wait_until(lambda: tg.guest_answer(summon) is not None, timeout=10)
    await tg.wait_until(
        lambda: (a := tg.guest_answer(summon)) is not None and a.buttons == ["🔄 Regenerate"],
        timeout=20,
    )
    answer = tg.guest_answer(summon)
    assert answer is not None
    assert answer.text == model.answer.strip().replace("**", "")
    assert any(e["type"] == "bold" for e in answer.entities)
    shown = [text for _, text in answer.history]
    assert shown[0] == "…" or answer.text.startswith(shown[0]), shown
    partial = [text for text in shown[1:-1] if text != "…"]
    assert partial and all(answer.text.startswith(text) for text in partial), shown
    gaps = [b - a for (a, _), (b, _) in zip(answer.history, answer.history[1:], strict=False)]
    assert min(gaps) >= 3.0, "a guest message is paced like a group message"
    assert [m.text for m in tg.messages(friends.id)] == [answer.text]  # one message, nothing else
    assert tg.stats.flood_429 == 0
    assert tg.stats.requests["sendMessage"] == 0 and tg.stats.requests["sendChatAction"] == 0
    assert len(model.chat_requests) == 1
    assert last_user_text(model.chat_requests[0].json) == "capital of Peru?"


async def test_a_stranger_is_refused_with_one_guest_answer_and_no_model_call(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, tmp_path: Path
) -> None:
    await start_bot(PHI4BOT_ALLOWED_USERS="1")
    friends = tg.guest_chat("group")
    stranger = tg.private_user(66, "Eve")
    summon = tg.summon(friends, stranger, f"{MENTION} hello?")
    await tg.wait_until(lambda: tg.guest_answer(summon) is not None, timeout=10)
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    answer = tg.guest_answer(summon)
    assert answer is not None and answer.text == "Sorry, this bot is private."
    assert answer.keyboard is None
    assert model.chat_requests == []
    with sqlite3.connect(tmp_path / "bot.db") as db:
        stored = [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES]
    assert stored == [0, 0, 0], "nothing is stored for a refused caller"
    allowed = tg.summon(friends, tg.private_user(1, "Anna"), f"{MENTION} hello?")
    await tg.wait_until(
        lambda: (a := tg.guest_answer(allowed)) is not None and a.text == model.answer, timeout=10
    )


async def test_a_summon_replying_to_a_voice_note_hands_the_model_that_audio(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "She says hello."
    await start_bot()
    friends = tg.guest_chat("private")
    anna, bob = tg.private_user(1, "Anna"), tg.private_user(2, "Bob")
    voice = tg.send_voice(friends, bob, make_ogg_opus(2.0), duration=2)
    summon = tg.summon(friends, anna, f"{MENTION} what does he say?", reply_to=voice)
    await tg.wait_until(
        lambda: (a := tg.guest_answer(summon)) is not None and a.text == model.answer, timeout=15
    )
    body = model.chat_requests[-1].json
    (audio,) = parts_of(body, "input_audio")
    with wave.open(io.BytesIO(base64.b64decode(audio["input_audio"]["data"]))) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (16_000, 1)
        assert abs(wav.getnframes() / 16_000 - 2.0) < 0.1
    assert last_user_text(body) == "what does he say?"


async def test_a_summon_replying_to_a_photo_hands_the_model_the_image_and_caption(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "Soup of the day: borscht."
    await start_bot()
    friends = tg.guest_chat()
    anna, bob = tg.private_user(1, "Anna"), tg.private_user(2, "Bob")
    sizes = [make_jpeg(32, 24, (0, 0, 255)), make_jpeg(320, 240, (0, 0, 255))]
    photo = tg.send_photo(friends, bob, sizes, caption="the menu")
    summon = tg.summon(friends, anna, f"{MENTION} translate", reply_to=photo)
    await tg.wait_until(
        lambda: (a := tg.guest_answer(summon)) is not None and a.text == model.answer, timeout=15
    )
    body = model.chat_requests[-1].json
    (image,) = parts_of(body, "image_url")
    assert image_of(image).size == (320, 240)
    assert last_user_text(body) == 'Bob wrote: "the menu"\n\ntranslate'


async def test_the_space_backend_gets_the_voice_note_a_summon_replies_to(
    tg: FakeTelegram, space: FakeSpace, start_bot: StartBot
) -> None:
    space.answer = "A tone."
    await start_bot(PHI4_BACKEND="space", PHI4_SPACE_URL=space.url)
    friends = tg.guest_chat()
    anna, bob = tg.private_user(1, "Anna"), tg.private_user(2, "Bob")
    voice = tg.send_voice(friends, bob, make_ogg_opus(1.0), duration=1)
    summon = tg.summon(friends, anna, f"{MENTION} what is it?", reply_to=voice)
    await tg.wait_until(
        lambda: (a := tg.guest_answer(summon)) is not None and a.text == space.answer, timeout=20
    )
    assert any(upload.filename.endswith(".wav") for upload in space.uploads)


async def test_a_summon_waiting_in_the_space_queue_shows_its_place_then_the_answer(
    tg: FakeTelegram, space: FakeSpace, start_bot: StartBot
) -> None:
    """Only the Space reports a queue: the guest message shows the caller's place in it
    until the answer replaces it."""
    space.answer = "Your turn came."
    space.queue_ahead = 2
    space.queue_delay = 1.2
    await start_bot(PHI4_BACKEND="space", PHI4_SPACE_URL=space.url)
    friends = tg.guest_chat()
    summon = tg.summon(friends, tg.private_user(1, "Anna"), f"{MENTION} hello Space")
    await tg.wait_until(
        lambda: (a := tg.guest_answer(summon)) is not None and a.text == space.answer,
        timeout=20,
    )
    answer = tg.guest_answer(summon)
    assert answer is not None
    shown = [text for _, text in answer.history]
    assert any(text.startswith("⏳ In queue: position") for text in shown), shown
    assert shown[-1] == space.answer
    assert [m.text for m in tg.messages(friends.id)] == [space.answer]
    assert tg.stats.requests["sendMessage"] == 0 and tg.stats.flood_429 == 0


@pytest.mark.parametrize(
    ("backend", "store_url"),
    [("openai", "sqlite"), ("openai", "postgres"), ("space", "sqlite")],
    indirect=["store_url"],
)
async def test_replying_to_the_bots_guest_answer_continues_and_anything_else_starts_afresh(
    tg: FakeTelegram,
    model: FakeOpenAIServer,
    space: FakeSpace,
    backend: str,
    store_url: str,
    start_bot: StartBot,
) -> None:
    """The stored guest answers come back as the model's context: as chat messages on an
    OpenAI server, as the Gradio chatbot history on the Space (any engine stores them)."""
    served = Served(backend, model, space)
    served.answer_with_context_size()
    await start_bot(DATABASE_URL=store_url, **served.settings())
    friends = tg.guest_chat()
    anna, ben = tg.private_user(1, "Anna"), tg.private_user(2, "Ben")

    async def answered(summon: dict[str, Any]) -> BotMessage:
        await tg.wait_until(
            lambda: (a := tg.guest_answer(summon)) is not None and a.buttons == ["🔄 Regenerate"],
            timeout=15,
        )
        answer = tg.guest_answer(summon)
        assert answer is not None
        return answer

    first = await answered(tg.summon(friends, anna, f"{MENTION} one"))
    assert first.text == "1 turns"
    shown = friends.messages[first.message_id]
    second = await answered(tg.summon(friends, anna, f"{MENTION} two", reply_to=shown))
    assert second.text == "3 turns", "a reply to its answer continues the conversation"
    assert served.last_question().endswith("two")
    by_ben = await answered(tg.summon(friends, ben, f"{MENTION} three", reply_to=shown))
    assert by_ben.text == "1 turns", "someone else's summon is their own conversation"
    assert 'wrote: "1 turns"' in served.last_question()
    fresh = await answered(tg.summon(friends, anna, f"{MENTION} four"))
    assert fresh.text == "1 turns", "a summon replying to nothing of the bot's starts afresh"


async def test_stop_by_the_caller_stops_and_by_anyone_else_does_not(
    tg: FakeTelegram, model: FakeOpenAIServer, store_url: str, start_bot: StartBot
) -> None:
    """The presses find their answer by the guest message's number among the answer's
    stored message ids: JSON text on SQLite, a bigint[] on PostgreSQL, where Regenerate
    also runs under the conversation's lease in the database."""
    model.answer = "one two three four five six"
    model.chunk_size = 4
    model.pause_after = 2
    await start_bot(DATABASE_URL=store_url)
    friends = tg.guest_chat()
    anna, ben = tg.private_user(1, "Anna"), tg.private_user(2, "Ben")
    summon = tg.summon(friends, anna, f"{MENTION} count")
    await tg.wait_until(
        lambda: (a := tg.guest_answer(summon)) is not None and a.buttons == ["⏹ Stop"], timeout=10
    )
    answer = tg.guest_answer(summon)
    assert answer is not None
    refused = tg.press_guest_button(answer, ben, "⏹ Stop")
    await tg.wait_until(lambda: tg.press(refused).answered, timeout=10)
    assert tg.press(refused).text == "Only the person who asked can do that."
    assert answer.buttons == ["⏹ Stop"]
    stopped = tg.press_guest_button(answer, anna, "⏹ Stop")
    await tg.wait_until(lambda: answer.text.endswith("⏹ Stopped."), timeout=10)
    assert tg.press(stopped).answered and tg.press(stopped).text is None
    await tg.wait_until(lambda: answer.buttons == ["🔄 Regenerate"], timeout=10)
    assert answer.text.startswith("one")

    model.pause_after = None
    model.answer = "again, whole"
    by_ben = tg.press_guest_button(answer, ben, "🔄 Regenerate")
    await tg.wait_until(lambda: tg.press(by_ben).answered, timeout=10)
    assert tg.press(by_ben).text == "Only the person who asked can do that."
    tg.press_guest_button(answer, anna, "🔄 Regenerate")
    await tg.wait_until(lambda: answer.text == "again, whole", timeout=10)
    assert tg.stats.flood_429 == 0


async def test_an_answer_too_long_for_one_message_is_cut_with_a_link_to_all_of_it(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "\n\n".join(f"Paragraph {n}: " + " ".join(["words"] * 60) for n in range(20))
    model.chunk_size = 400
    await start_bot()
    friends = tg.guest_chat()
    anna, ben = tg.private_user(1, "Anna"), tg.private_user(2, "Ben")
    summon = tg.summon(friends, anna, f"{MENTION} essay please")
    await tg.wait_until(
        lambda: (a := tg.guest_answer(summon)) is not None and "🔄 Regenerate" in a.buttons,
        timeout=20,
    )
    answer = tg.guest_answer(summon)
    assert answer is not None
    assert len(answer.text) <= 4096 and answer.text.endswith("…")
    assert model.answer.startswith(answer.text[:-1].rstrip())
    link = next(b["url"] for row in answer.keyboard or [] for b in row if "url" in b)
    assert link.startswith(f"https://t.me/{BOT_USERNAME}?start=")
    payload = link.split("start=", 1)[1]

    tg.send_text(ben.chat, ben, f"/start {payload}")
    await tg.wait_until(lambda: tg.messages(ben.id), timeout=10)
    assert tg.text_of(ben.id) == "That link opens an answer for the person who asked for it."
    tg.send_text(anna.chat, anna, f"/start {payload}")
    await tg.wait_until(lambda: len(tg.messages(anna.id)) >= 2, timeout=10)
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    assert tg.text_of(anna.id, sep=" ").split() == model.answer.split()
    assert tg.stats.flood_429 == 0


async def test_killed_mid_answer_the_restart_marks_the_guest_message_interrupted(
    tg: FakeTelegram, model: FakeOpenAIServer, store_url: str, start_bot: StartBot
) -> None:
    model.answer = "alpha beta gamma delta epsilon"
    model.chunk_size = 6
    model.pause_after = 2
    bot = await start_bot(DATABASE_URL=store_url)
    friends = tg.guest_chat()
    anna = tg.private_user(1, "Anna")
    summon = tg.summon(friends, anna, f"{MENTION} tell me")
    await tg.wait_until(
        lambda: (a := tg.guest_answer(summon)) is not None and a.text.startswith("alpha"),
        timeout=10,
    )
    store = await open_store(store_url, max_attachment_bytes=1 << 20)
    try:
        key = guest_key(friends.id, anna.id)

        async def checkpointed() -> bool:
            """The partial text and the guest message's id are where a restart finds them."""
            inline = await store.get_setting(friends.id, guest_message_setting(anna.id))
            turns = (await store.export_conversation(await store.current_conversation(key)))[
                "turns"
            ]
            return inline is not None and any(t["role"] == "assistant" and t["text"] for t in turns)

        async with asyncio.timeout(10):
            while not await checkpointed():
                await asyncio.sleep(0.05)
    finally:
        await store.close()
    await bot.kill()
    answer = tg.guest_answer(summon)
    assert answer is not None
    cut_at = answer.text

    model.pause_after = None
    await start_bot(DATABASE_URL=store_url)
    await tg.wait_until(lambda: "restarted" in answer.text, timeout=15)
    assert answer.text.startswith(cut_at)
    assert answer.text.endswith(
        "⚠️ I was restarted before I finished this answer. Ask me again for a full answer."
    )
    assert tg.stats.requests["sendMessage"] == 0
