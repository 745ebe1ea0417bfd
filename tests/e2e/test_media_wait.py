"""Media sent without a caption waits briefly for its question, on both backends: a voice
note or text that follows becomes the same turn; nothing else waits for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.e2e.conftest import StartBot
from tests.e2e.test_media_kinds import ANSWER, Chat
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.space import FakeSpace
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_jpeg, make_ogg_opus

WAIT = 3.0  # PHI4BOT_MEDIA_WAIT's default


@pytest.fixture(params=["openai", "space"])
async def chat(
    request: pytest.FixtureRequest,
    tg: FakeTelegram,
    model: FakeOpenAIServer,
    space: FakeSpace,
    start_bot: StartBot,
) -> AsyncIterator[Chat]:
    model.answer = space.answer = ANSWER
    wait = {"PHI4BOT_MEDIA_WAIT": str(WAIT)}
    if request.param == "space":
        await start_bot(PHI4_BACKEND="space", PHI4_SPACE_URL=space.url, **wait)
    else:
        await start_bot(**wait)
    yield Chat(tg, request.param, model, space)


async def test_a_photo_then_a_voice_note_are_one_request(chat: Chat) -> None:
    tg, alice = chat.tg, chat.alice
    tg.send_photo(alice.chat, alice, make_jpeg(320, 240))
    await asyncio.sleep(1.5)  # Alice records her question
    assert chat.requests == 0, "the photo waits for its question"
    tg.send_voice(alice.chat, alice, make_ogg_opus(2.0), duration=2)
    await chat.replies(ANSWER)
    assert chat.requests == 1
    got = chat.received()
    assert [image.size for image in got.images] == [(320, 240)]
    (seconds,) = got.audio_seconds
    assert abs(seconds - 2.0) < 0.1
    answer = tg.messages(42)[0]
    assert answer.reply_to == 1, "the answer replies to the photo"

    tg.send_photo(alice.chat, alice, make_jpeg(64, 48))
    tg.send_text(alice.chat, alice, "What colour is it?")
    await chat.replies(ANSWER)
    assert chat.requests == 2
    got = chat.received()
    assert len(got.images) == 1 and "What colour is it?" in got.text
    chat.assert_uploaded_once()


async def test_a_photo_without_follow_up_is_answered_alone_and_holds_no_one_up(
    chat: Chat,
) -> None:
    tg, alice = chat.tg, chat.alice
    bob = tg.private_user(43, "Bob")
    sent = time.monotonic()
    tg.send_photo(alice.chat, alice, make_jpeg(100, 80))
    tg.send_text(bob.chat, bob, "Hi, are you there?")
    await tg.wait_until(lambda: tg.text_of(43) == ANSWER, timeout=20, what="Bob's answer")
    bob_answered = time.monotonic() - sent
    assert bob_answered < WAIT - 0.5, f"Bob waited {bob_answered:.1f} s"
    assert tg.text_of(42) == "", "Alice's photo still waits for a question"

    await chat.replies(ANSWER)
    alice_answered = time.monotonic() - sent
    assert alice_answered >= WAIT - 0.1
    got = chat.received()
    assert [image.size for image in got.images] == [(100, 80)] and got.audio_seconds == []
    assert chat.requests == 2
    await chat.still_answers()
    assert chat.requests == 3, "a question after the wait is a turn of its own"


async def test_a_command_hands_the_waiting_photo_over_first(chat: Chat) -> None:
    tg, alice = chat.tg, chat.alice
    sent = time.monotonic()
    tg.send_photo(alice.chat, alice, make_jpeg(100, 80))
    tg.send_text(alice.chat, alice, "/retry")
    await tg.wait_until(lambda: chat.requests == 2, timeout=20, what="the photo answered twice")
    assert time.monotonic() - sent < WAIT, "/retry did not wait behind the photo's wait"
    got = chat.received()
    assert [image.size for image in got.images] == [(100, 80)]
