"""/transcribe and /translate end to end, on both backends: one request with the sound replied
to and Phi-4's instruction; and the one notice for speech in a language Phi-4 may mishear."""

from __future__ import annotations

from tests.e2e.conftest import StartBot, last_user_text
from tests.e2e.test_media_kinds import ANSWER, Chat, chat
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_mp4, make_ogg_opus

__all__ = ["chat"]  # the parametrised fixture: every test here runs on both backends

NOTICE = (
    "Обратите внимание: я хорошо распознаю речь на английском, китайском, немецком, "
    "французском, итальянском, японском, испанском и португальском; на других языках я могу "
    "расслышать сказанное неверно."
)


async def test_transcribe_sends_the_voice_note_with_the_recognition_instruction(
    chat: Chat,
) -> None:
    tg, alice = chat.tg, chat.alice
    voice = tg.send_voice(alice.chat, alice, make_ogg_opus(2.0), duration=2)
    await chat.replies(ANSWER)
    requests = chat.requests

    command = tg.send_text(alice.chat, alice, "/transcribe", reply_to=voice)
    await chat.replies(ANSWER)
    assert chat.requests == requests + 1
    got = chat.received()
    (seconds,) = got.audio_seconds
    assert abs(seconds - 2.0) < 0.1 and got.images == []
    assert got.text == "Transcribe the audio clip into text."
    assert tg.messages(42)[-1].reply_to == command["message_id"]

    tg.send_text(alice.chat, alice, "/translate fr", reply_to=voice)
    await chat.replies(ANSWER)
    got = chat.received()
    assert got.text == "Translate the audio to French." and len(got.audio_seconds) == 1

    note = tg.send_video_note(alice.chat, alice, make_mp4(3.0, width=240, height=240))
    await chat.replies(ANSWER)
    tg.send_text(alice.chat, alice, "/transcribe", reply_to=note)
    await chat.replies(ANSWER)
    got = chat.received()
    (seconds,) = got.audio_seconds
    assert abs(seconds - 3.0) < 0.1 and got.images == [], "only the sound is transcribed"
    chat.assert_uploaded_once()


async def test_translate_a_text_into_the_users_language_or_the_one_named(chat: Chat) -> None:
    tg, alice = chat.tg, chat.alice
    german = tg.send_text(alice.chat, alice, "Guten Morgen, wie geht es dir?")
    await chat.replies(ANSWER)
    tg.send_text(alice.chat, alice, "/translate", reply_to=german)
    await chat.replies(ANSWER)
    got = chat.received()
    assert got.text.startswith("Translate the following text to English.")
    assert got.text.endswith("Guten Morgen, wie geht es dir?")

    tg.send_text(alice.chat, alice, "/translate Klingon", reply_to=german)
    await chat.replies(ANSWER)
    assert chat.received().text.startswith("Translate the following text to Klingon.")


async def test_speech_commands_without_something_to_hear_explain_themselves(chat: Chat) -> None:
    tg, alice = chat.tg, chat.alice
    tg.send_text(alice.chat, alice, "/transcribe")
    await chat.replies(
        "Reply with /transcribe to a voice note, audio file, video or video note, and I write "
        "down what is said."
    )
    hello = tg.send_text(alice.chat, alice, "hello")
    await chat.replies(ANSWER)
    requests = chat.requests
    tg.send_text(alice.chat, alice, "/transcribe", reply_to=hello)
    await chat.replies(
        "Reply with /transcribe to a voice note, audio file, video or video note, and I write "
        "down what is said."
    )
    assert chat.requests == requests
    await chat.still_answers()


async def test_a_voice_note_in_russian_is_answered_after_one_notice(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = ANSWER
    await start_bot()
    ivan = tg.private_user(7, "Иван", language_code="ru")
    voice = tg.send_voice(ivan.chat, ivan, make_ogg_opus(1.0), duration=1)
    await tg.wait_until(lambda: ANSWER in tg.text_of(7), timeout=20, what="the answer")
    assert [m.text for m in tg.messages(7)] == [NOTICE, ANSWER]

    tg.send_text(ivan.chat, ivan, "/transcribe", reply_to=voice)
    await tg.wait_until(lambda: len(model.chat_requests) == 2, timeout=20, what="the request")
    assert last_user_text(model.chat_requests[-1].json) == "Transcribe the audio clip into text."
    tg.send_voice(ivan.chat, ivan, make_ogg_opus(1.0), duration=1)
    await tg.wait_until(lambda: len(tg.messages(7)) == 4, timeout=20, what="two answers more")
    assert [m.text for m in tg.messages(7)] == [NOTICE, ANSWER, ANSWER, ANSWER], "told once"


async def test_a_transcript_streams_is_stored_and_stops_like_any_answer(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "Hello there, this is what I said in my voice note."
    model.chunk_size = 6
    await start_bot()
    alice = tg.private_user(42, "Alice")
    voice = tg.send_voice(alice.chat, alice, make_ogg_opus(1.0), duration=1)
    await tg.wait_until(lambda: tg.text_of(42) == model.answer, timeout=20, what="the answer")

    model.pause_after = 2  # hold the transcript after two chunks
    tg.send_text(alice.chat, alice, "/transcribe", reply_to=voice)
    await tg.wait_until(
        lambda: len(tg.messages(42)) == 2 and tg.messages(42)[1].text.startswith("Hello there"),
        timeout=20,
        what="the transcript streaming",
    )
    tg.send_text(alice.chat, alice, "/stop")
    await tg.wait_until(lambda: "Stopped" in tg.messages(42)[-1].text, timeout=10)

    model.pause_after = None
    tg.send_text(alice.chat, alice, "thanks")
    await tg.wait_until(lambda: len(model.chat_requests) == 3, timeout=20, what="the request")
    messages = model.chat_requests[-1].json["messages"]
    assert "Transcribe the audio clip into text." in str(messages[-3]["content"])
    assert messages[-2] == {"role": "assistant", "content": "Hello there,"}
