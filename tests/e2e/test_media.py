"""Photos, voice notes and files end to end: what the model receives, what the chat sees."""

from __future__ import annotations

import base64
import io
import wave

from PIL import Image

from tests.e2e.conftest import StartBot, last_user_text
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.space import FakeSpace
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import corrupted_ogg, make_jpeg, make_m4a, make_ogg_opus, make_png


def parts_of(body: dict, kind: str) -> list[dict]:
    return [
        p
        for m in body["messages"]
        if isinstance(m["content"], list)
        for p in m["content"]
        if p["type"] == kind
    ]


def image_of(part: dict) -> Image.Image:
    url = part["image_url"]["url"]
    assert url.startswith("data:image/")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


async def test_a_photo_reaches_the_model_as_its_largest_size_with_the_caption(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "A red square."
    await start_bot()
    alice = tg.private_user(42, "Alice")
    sizes = [make_jpeg(32, 24, (255, 0, 0)), make_jpeg(320, 240, (255, 0, 0))]
    tg.send_photo(alice.chat, alice, sizes, caption="What is this?")
    await tg.wait_until(lambda: tg.text_of(42) == "A red square.", timeout=10)
    body = model.chat_requests[-1].json
    (image,) = parts_of(body, "image_url")
    assert image_of(image).size == (320, 240)
    assert last_user_text(body) == "What is this?"

    model.answer = "Still red."
    tg.send_text(alice.chat, alice, "And its color?")
    await tg.wait_until(lambda: tg.messages(42)[-1].text == "Still red.", timeout=10)
    assert len(parts_of(model.chat_requests[-1].json, "image_url")) == 1, "follow-ups still see it"


async def test_a_voice_note_reaches_the_model_as_16khz_mono_wav(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "You asked about the weather."
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_voice(alice.chat, alice, make_ogg_opus(3.0), duration=3)
    await tg.wait_until(lambda: tg.text_of(42) == model.answer, timeout=10)
    (audio,) = parts_of(model.chat_requests[-1].json, "input_audio")
    assert audio["input_audio"]["format"] == "wav"
    with wave.open(io.BytesIO(base64.b64decode(audio["input_audio"]["data"]))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
        assert abs(wav.getnframes() / 16_000 - 3.0) < 0.05


async def test_an_album_is_one_turn_with_all_its_photos(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "Three photos."
    await start_bot()
    alice = tg.private_user(42, "Alice")
    for n, color in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        caption = "Compare these" if n == 0 else None
        tg.send_photo(
            alice.chat, alice, make_png(40 + n, 30, color), caption=caption, media_group_id="album1"
        )
    await tg.wait_until(lambda: tg.text_of(42) == "Three photos.", timeout=10)
    assert len(model.chat_requests) == 1
    images = parts_of(model.chat_requests[-1].json, "image_url")
    assert [image_of(p).size[0] for p in images] == [40, 41, 42]


async def test_bad_media_gets_a_clear_reply_and_the_bot_keeps_working(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "Fine."
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_document(
        alice.chat, alice, b"x" * 1000, "film.png", "image/png", size_override=25 * 1024 * 1024
    )
    await tg.wait_until(lambda: len(tg.messages(42)) == 1, timeout=10)
    assert "25 MB" in tg.messages(42)[0].text
    tg.send_voice(alice.chat, alice, corrupted_ogg(), duration=2)
    await tg.wait_until(lambda: len(tg.messages(42)) == 2, timeout=10)
    assert (
        "could not" in tg.messages(42)[1].text.lower() or "read" in tg.messages(42)[1].text.lower()
    )
    tg.send_sticker(alice.chat, alice)  # a damaged WEBP
    await tg.wait_until(lambda: len(tg.messages(42)) == 3, timeout=10)
    assert "could not read that image" in tg.messages(42)[2].text
    tg.send_document(alice.chat, alice, b"PK\x03\x04", "photos.zip", "application/zip")
    await tg.wait_until(lambda: len(tg.messages(42)) == 4, timeout=10)
    assert "text, photos" in tg.messages(42)[3].text
    assert model.chat_requests == []
    tg.send_text(alice.chat, alice, "still there?")
    await tg.wait_until(lambda: tg.messages(42)[-1].text == "Fine.", timeout=10)


async def test_a_text_only_model_answers_a_photo_with_what_it_can_take(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    await start_bot(PHI4_OPENAI_MEDIA="")
    alice = tg.private_user(42, "Alice")
    tg.send_photo(alice.chat, alice, make_png(), caption="what is it?")
    await tg.wait_until(lambda: tg.messages(42), timeout=10)
    assert tg.messages(42)[0].text == "This model takes text only, not images."
    assert model.chat_requests == []


async def test_the_space_backend_uploads_photos_and_voice_notes(
    tg: FakeTelegram, space: FakeSpace, start_bot: StartBot
) -> None:
    space.answer = "I see a red square and hear a tone."
    await start_bot(PHI4_BACKEND="space", PHI4_SPACE_URL=space.url)
    alice = tg.private_user(42, "Alice")
    png = make_png(50, 40, (255, 0, 0))
    tg.send_photo(alice.chat, alice, png, caption="look")
    await tg.wait_until(lambda: tg.text_of(42) == space.answer, timeout=15)
    assert any(upload.data == png for upload in space.uploads)


async def test_images_and_audio_sent_as_files_are_read_like_photos_and_voice(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "Got it."
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_document(
        alice.chat, alice, make_png(300, 200), "scan.png", "image/png", caption="read this"
    )
    await tg.wait_until(lambda: len(tg.messages(42)) == 1, timeout=10)
    (image,) = parts_of(model.chat_requests[-1].json, "image_url")
    assert image_of(image).size == (300, 200)

    tg.send_audio(alice.chat, alice, make_m4a(2.0), 2, file_name="memo.m4a", mime_type="audio/mp4")
    await tg.wait_until(lambda: len(tg.messages(42)) == 2, timeout=10)
    audio = parts_of(model.chat_requests[-1].json, "input_audio")[-1]
    with wave.open(io.BytesIO(base64.b64decode(audio["input_audio"]["data"]))) as wav:
        assert abs(wav.getnframes() / wav.getframerate() - 2.0) < 0.05

    tg.send_document(alice.chat, alice, b"%PDF-1.4 ...", "report.pdf", "application/pdf")
    await tg.wait_until(lambda: len(tg.messages(42)) == 3, timeout=10)
    assert tg.messages(42)[2].text == "I could not read that PDF. It may be damaged."
    assert len(model.chat_requests) == 2
