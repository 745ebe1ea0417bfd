"""Video notes, videos, GIFs, PDFs, text files and stickers end to end, on both backends:
what the model receives for each, and one clear sentence for what cannot be read."""

from __future__ import annotations

import base64
import io
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from PIL import Image

from tests.e2e.conftest import StartBot, last_user_text
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.space import FakeSpace
from tests.fakes.telegram import FakeTelegram, User
from tests.media_factory import (
    make_encrypted_pdf,
    make_image,
    make_mp4,
    make_scanned_pdf,
    make_text_pdf,
    make_webm_sticker,
)

ANSWER = "Seen."


def red(image: Image.Image) -> int:
    """The red level of a frame's corner (the test videos fade from black to red)."""
    pixel = image.convert("RGB").getpixel((5, 5))
    assert isinstance(pixel, tuple)
    return int(pixel[0])


def grey(image: Image.Image) -> int:
    """How light a page is near its corner (0 black, 255 white)."""
    pixel = image.convert("L").getpixel((10, 10))
    assert isinstance(pixel, int | float)
    return int(pixel)


@dataclass
class Received:
    """What one model request carried for the newest user turn, whichever the backend."""

    images: list[Image.Image]
    audio_seconds: list[float]
    text: str


def _wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
        return wav.getnframes() / 16_000


class Chat:
    """Alice's private chat with the bot, and what the backend behind it received."""

    def __init__(
        self, tg: FakeTelegram, backend: str, model: FakeOpenAIServer, space: FakeSpace
    ) -> None:
        self.tg, self.backend, self.model, self.space = tg, backend, model, space
        self.alice: User = tg.private_user(42, "Alice")
        self.seen = 0

    @property
    def requests(self) -> int:
        return len(self.model.chat_requests if self.backend == "openai" else self.space.requests)

    async def replies(self, expected: str) -> None:
        """Wait until the bot's next message reads `expected` (an answer streams in first)."""
        before = self.seen
        messages = self.tg.messages

        def done() -> bool:
            return len(messages(42)) > before and messages(42)[before].text == expected

        try:
            await self.tg.wait_until(done, timeout=20, what=f"the reply {expected!r}")
        finally:
            self.seen = len(messages(42))
        assert len(messages(42)) == before + 1, [m.text for m in messages(42)[before:]]

    def received(self) -> Received:
        if self.backend == "openai":
            body = self.model.chat_requests[-1].json
            parts = body["messages"][-1]["content"]
            parts = parts if isinstance(parts, list) else []
            images: list[Image.Image] = [
                Image.open(io.BytesIO(base64.b64decode(p["image_url"]["url"].split(",", 1)[1])))
                for p in parts
                if p["type"] == "image_url"
            ]
            audio = [
                _wav_seconds(base64.b64decode(p["input_audio"]["data"]))
                for p in parts
                if p["type"] == "input_audio"
            ]
            return Received(images, audio, last_user_text(body))
        request = self.space.requests[-1]
        by_path = {u.path: u.data for u in self.space.uploads}
        files = [m["content"] for m in request.files]
        files = [(c[0] if isinstance(c, list) else c)["file"] for c in files]
        images = [
            Image.open(io.BytesIO(by_path[f["path"]]))
            for f in files
            if f["mime_type"].startswith("image/")
        ]
        audio = [_wav_seconds(by_path[f["path"]]) for f in files if f["mime_type"] == "audio/wav"]
        assert request.predict is not None
        return Received(images, audio, request.predict["data"][1]["text"])

    def history_media(self) -> int:
        """Media the newest request re-sent from earlier turns."""
        if self.backend == "openai":
            messages = self.model.chat_requests[-1].json["messages"][:-1]
            return sum(
                1
                for m in messages
                if isinstance(m["content"], list)
                for p in m["content"]
                if p["type"] in ("image_url", "input_audio")
            )
        history = self.space.requests[-1].history
        return sum(1 for m in history if "file" in str(m["content"]))

    def history_text(self) -> str:
        if self.backend == "openai":
            return str(self.model.chat_requests[-1].json["messages"][:-1])
        return str(self.space.requests[-1].history)

    def assert_uploaded_once(self) -> None:
        """On the Space every file is uploaded once, however often it is sent again."""
        if self.backend == "space":
            paths = [u.path for u in self.space.uploads]
            assert len(paths) == len(set(paths))

    def assert_each_file_once_per_request(self) -> None:
        """On the Space a file is in the newest request once: in the history or among this
        turn's files, never both (the answer function may read both inputs)."""
        if self.backend != "space":
            return
        request = self.space.requests[-1]
        paths: list[str] = []

        def walk(value: object) -> None:
            if isinstance(value, dict):
                if isinstance(value.get("path"), str):
                    paths.append(value["path"])
                for inner in value.values():
                    walk(inner)
            elif isinstance(value, list):
                for inner in value:
                    walk(inner)

        walk([request.history, request.files])
        assert paths and len(paths) == len(set(paths)), paths

    async def still_answers(self) -> None:
        self.tg.send_text(self.alice.chat, self.alice, "still there?")
        await self.replies(ANSWER)


@pytest.fixture(params=["openai", "space"])
async def chat(
    request: pytest.FixtureRequest,
    tg: FakeTelegram,
    model: FakeOpenAIServer,
    space: FakeSpace,
    start_bot: StartBot,
) -> AsyncIterator[Chat]:
    model.answer = space.answer = ANSWER
    if request.param == "space":
        await start_bot(PHI4_BACKEND="space", PHI4_SPACE_URL=space.url)
    else:
        await start_bot()
    yield Chat(tg, request.param, model, space)


async def test_video_notes_videos_and_gifs_become_frames_and_sound(chat: Chat) -> None:
    tg, alice = chat.tg, chat.alice
    tg.send_video_note(alice.chat, alice, make_mp4(3.0, width=240, height=240))
    await chat.replies(ANSWER)
    got = chat.received()
    assert len(got.images) >= 1
    assert all(image.size == (240, 240) for image in got.images)
    (seconds,) = got.audio_seconds
    assert abs(seconds - 3.0) < 0.1

    requests = chat.requests
    tg.send_video(alice.chat, alice, make_mp4(4.0), caption="What happens here?")
    await chat.replies(ANSWER)
    assert chat.requests == requests + 1, "frames, sound and caption go in one request"
    got = chat.received()
    assert len(got.images) >= 2
    (first, *_, last) = got.images
    assert red(first) < red(last)
    (seconds,) = got.audio_seconds
    assert abs(seconds - 4.0) < 0.1
    assert "What happens here?" in got.text
    chat.assert_uploaded_once()
    chat.assert_each_file_once_per_request()

    tg.send_text(alice.chat, alice, "And then?")
    await chat.replies(ANSWER)
    assert chat.history_media() == 3, "PHI4BOT_HISTORY_MEDIA counts each frame"
    assert "[image]" in chat.history_text(), "older frames are placeholders"
    chat.assert_each_file_once_per_request()

    tg.send_animation(alice.chat, alice, make_mp4(2.0, sound=False))
    await chat.replies(ANSWER)
    got = chat.received()
    assert len(got.images) >= 1 and got.audio_seconds == []


async def test_pdfs_give_their_text_or_their_scanned_pages(chat: Chat) -> None:
    tg, alice = chat.tg, chat.alice
    pdf = make_text_pdf([["Quarterly revenue grew by 12 percent."], ["Costs stayed flat."]])
    tg.send_document(alice.chat, alice, pdf, "report.pdf", "application/pdf", caption="Sum up")
    await chat.replies(ANSWER)
    got = chat.received()
    assert "Quarterly revenue grew by 12 percent." in got.text
    assert "Costs stayed flat." in got.text and "Sum up" in got.text
    assert got.images == []

    scan = make_scanned_pdf([(250, 250, 250), (10, 10, 10)])
    tg.send_document(alice.chat, alice, scan, "scan.pdf", "application/pdf")
    await chat.replies(ANSWER)
    got = chat.received()
    assert len(got.images) == 2
    shades = [grey(image) for image in got.images]
    assert shades[0] > 200 and shades[1] < 50

    requests = chat.requests
    tg.send_document(alice.chat, alice, make_encrypted_pdf(), "locked.pdf", "application/pdf")
    await chat.replies("That PDF is protected by a password, so I cannot read it.")
    assert chat.requests == requests
    await chat.still_answers()


async def test_code_and_text_files_and_stickers(chat: Chat) -> None:
    tg, alice = chat.tg, chat.alice
    code = b"def greet(name):\n    return f'Hello, {name}!'\n"
    tg.send_document(alice.chat, alice, code, "greet.py", "text/x-python", caption="Review")
    await chat.replies(ANSWER)
    got = chat.received()
    assert "return f'Hello, {name}!'" in got.text and "greet.py" in got.text

    russian = "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 4
    tg.send_document(alice.chat, alice, russian.encode("cp1251"), "note.txt", "text/plain")
    await chat.replies(ANSWER)
    assert "Съешь же ещё этих мягких французских булок" in chat.received().text

    sticker = make_image("WEBP", 512, 512, (0, 200, 0))
    tg.send_sticker(alice.chat, alice, sticker, emoji="😀")
    await chat.replies(ANSWER)
    got = chat.received()
    (image,) = got.images
    assert image.size == (512, 512)
    assert "😀" in got.text

    tg.send_sticker(alice.chat, alice, make_webm_sticker(), emoji="🎉", is_video=True)
    await chat.replies(ANSWER)
    got = chat.received()
    assert [image.size for image in got.images] == [(128, 128)] and "🎉" in got.text

    tg.send_sticker(alice.chat, alice, b"\x1f\x8b lottie", emoji="🐱", is_animated=True)
    await chat.replies(ANSWER)
    got = chat.received()
    assert got.images == [] and "[Sticker 🐱]" in got.text


async def test_too_long_and_damaged_videos_get_one_sentence_each(chat: Chat) -> None:
    tg, alice = chat.tg, chat.alice
    requests = chat.requests
    ten_minutes = make_mp4(600.0, width=64, height=48, fps=1, sound=False)
    started = time.monotonic()
    tg.send_video(alice.chat, alice, ten_minutes, duration=5)  # the sender's claim is a lie
    await chat.replies("That video is 600 seconds long; I can watch at most 120 seconds.")
    assert time.monotonic() - started < 5

    damaged = make_mp4(2.0)
    damaged = damaged[:64] + bytes(len(damaged) - 64)
    tg.send_video(alice.chat, alice, damaged, duration=2)
    await chat.replies(
        "I could not read that video. It may be damaged or in a format I do not know."
    )
    assert chat.requests == requests
    await chat.still_answers()


async def test_an_edited_caption_keeps_the_documents_text(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = ANSWER
    await start_bot()
    alice = tg.private_user(42, "Alice")
    pdf = make_text_pdf([["The invoice total is 420 euros."]])
    sent = tg.send_document(alice.chat, alice, pdf, "invoice.pdf", "application/pdf", caption="x")
    await tg.wait_until(lambda: tg.text_of(42) == ANSWER, timeout=20)
    tg.edit_text(alice.chat, sent, "What is the total?")
    await tg.wait_until(lambda: len(model.chat_requests) == 2, timeout=20)
    text = last_user_text(model.chat_requests[-1].json)
    assert "The invoice total is 420 euros." in text and text.endswith("What is the total?")


async def test_a_sticker_in_a_group_counts_only_as_a_reply_to_the_bot(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = ANSWER
    await start_bot()
    group = tg.group(title="Team")
    anna = tg.private_user(1, "Anna")
    tg.send_sticker(group, anna, make_image("WEBP", 64, 64), emoji="🔥")
    tg.send_text(group, anna, "@phi4_test_bot hello")
    await tg.wait_until(lambda: tg.text_of(group.id) == ANSWER, timeout=20)
    assert len(model.chat_requests) == 1
    answer = tg.messages(group.id)[0]
    tg.send_sticker(group, anna, make_image("WEBP", 64, 64), emoji="👍", reply_to=answer.message_id)
    await tg.wait_until(lambda: len(model.chat_requests) == 2, timeout=20)
    assert "👍" in last_user_text(model.chat_requests[-1].json)
    assert "🔥" not in str(model.chat_requests[-1].json)
