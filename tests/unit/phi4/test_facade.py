"""The `Microsoft_Phi_4` facade: messages and media in, chunks out, over both fake servers."""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import bot.phi4.factory
from bot.config import Settings
from bot.phi4.backend import Backend
from bot.phi4.errors import EmptyConversation, QuotaExceeded, UnreadableMedia
from bot.phi4.facade import Microsoft_Phi_4, Phi4Session, split_messages, text_of
from bot.phi4.openai_backend import OpenAIBackend
from tests.fakes.openai_server import DEFAULT_MODEL, FakeOpenAIServer
from tests.fakes.space import FakeSpace
from tests.media_factory import make_ogg_opus, make_png

MODEL = Microsoft_Phi_4.default_model


@pytest.fixture
async def srv() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
async def backend(srv: FakeOpenAIServer) -> AsyncIterator[OpenAIBackend]:
    async with OpenAIBackend(srv.base_url, api_key=None, model=DEFAULT_MODEL, max_retries=0) as b:
        yield b


async def answer(**kwargs: Any) -> list[Any]:
    return [c async for c in Microsoft_Phi_4.create_async_generator(model=MODEL, **kwargs)]


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


async def test_an_instance_streams_the_answer_in_chunks(
    srv: FakeOpenAIServer, backend: OpenAIBackend
) -> None:
    srv.chunk_delay = 0.01  # pieces that arrive together are given out as one chunk
    generator = Microsoft_Phi_4().create_async_generator(
        model=MODEL, messages=[user("Hi")], backend=backend
    )
    chunks = [chunk async for chunk in generator]
    assert len(chunks) > 1
    assert "".join(chunks) == srv.answer


async def test_openai_style_messages_become_system_prompt_and_ordered_turns(
    srv: FakeOpenAIServer, backend: OpenAIBackend
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "First"}]},
        {"role": "assistant", "content": "Answer one"},
        {"role": "user", "content": [{"type": "text", "text": "Second"}, "part two"]},
    ]
    await answer(messages=messages, backend=backend)
    sent = srv.chat_requests[-1].json["messages"]
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First"},
        {"role": "assistant", "content": "Answer one"},
        {"role": "user", "content": "Second\npart two"},
    ]


async def test_image_bytes_and_audio_path_reach_the_model_as_png_and_16khz_wav(
    srv: FakeOpenAIServer, backend: OpenAIBackend, tmp_path: Path
) -> None:
    png = make_png()
    voice = tmp_path / "voice.ogg"
    voice.write_bytes(make_ogg_opus(1.0))
    media = [(png, "photo.png"), (voice, "voice.ogg")]
    await answer(messages=[user("What is this?")], media=media, backend=backend)
    text, image, audio = srv.chat_requests[-1].json["messages"][-1]["content"]
    assert text == {"type": "text", "text": "What is this?"}
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png).decode()
    assert audio["input_audio"]["format"] == "wav"
    with wave.open(io.BytesIO(base64.b64decode(audio["input_audio"]["data"]))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
        assert wav.getnframes() == pytest.approx(16_000, rel=0.1)


async def test_the_session_comes_first_and_carries_the_answer_and_the_media_onward(
    srv: FakeOpenAIServer, backend: OpenAIBackend
) -> None:
    first = await answer(
        messages=[{"role": "system", "content": "Be brief."}, user("Look")],
        media=[(make_png(), "photo.png")],
        backend=backend,
        return_conversation=True,
    )
    session = first[0]
    assert isinstance(session, Phi4Session)
    assert session.backend == "openai"
    assert "".join(first[1:]) == srv.answer
    assert session.messages == [
        {"role": "system", "content": "Be brief."},
        user("Look"),
        {"role": "assistant", "content": srv.answer},
    ]
    await answer(messages=[user("And now?")], conversation=session, backend=backend)
    resent = srv.chat_requests[-1].json["messages"]
    assert [m["role"] for m in resent] == ["system", "user", "assistant", "user"]
    assert resent[1]["content"][1]["type"] == "image_url"  # the picture is still in context
    assert resent[3] == user("And now?")


async def test_resending_the_whole_history_with_the_session_does_not_duplicate_it(
    srv: FakeOpenAIServer, backend: OpenAIBackend
) -> None:
    first = await answer(messages=[user("One")], backend=backend, return_conversation=True)
    session: Phi4Session = first[0]
    await answer(messages=[*session.messages, user("Two")], conversation=session, backend=backend)
    roles = [m["role"] for m in srv.chat_requests[-1].json["messages"]]
    assert roles == ["user", "assistant", "user"]


async def test_a_failed_answer_leaves_the_session_as_it_was(
    srv: FakeOpenAIServer, backend: OpenAIBackend
) -> None:
    session = (await answer(messages=[user("One")], backend=backend, return_conversation=True))[0]
    before = list(session.messages)
    srv.fail_next("429")
    with pytest.raises(QuotaExceeded):
        await answer(messages=[user("Two")], conversation=session, backend=backend)
    assert session.messages == before


async def test_an_injected_backend_stays_open(
    srv: FakeOpenAIServer, backend: OpenAIBackend
) -> None:
    await answer(messages=[user("One")], backend=backend)
    await answer(messages=[user("Two")], backend=backend)
    assert len(srv.chat_requests) == 2


class ClosingSpy:
    """Wraps the backend the facade builds, to see that the facade closes it."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.name, self.accepts, self.closed = inner, inner.name, inner.accepts, False

    def stream(self, conversation: Any, *, on_queue: Any = None) -> AsyncIterator[str]:
        return self.inner.stream(conversation, on_queue=on_queue)

    async def probe(self) -> str:
        return await self.inner.probe()

    async def aclose(self) -> None:
        self.closed = True
        await self.inner.aclose()


async def test_a_backend_built_from_settings_is_closed_and_gets_the_api_key(
    srv: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[ClosingSpy] = []
    real = bot.phi4.factory.create_backend

    def spy(settings: Settings) -> Backend:
        built.append(ClosingSpy(real(settings)))
        return built[-1]

    monkeypatch.setattr(bot.phi4.factory, "create_backend", spy)
    settings = Settings(PHI4_BACKEND="openai", OPENAI_BASE_URL=srv.base_url)
    chunks = await answer(messages=[user("Hi")], settings=settings, api_key="sk-caller")
    assert "".join(chunks) == srv.answer
    assert built[0].closed
    assert srv.chat_requests[-1].headers["Authorization"] == "Bearer sk-caller"


async def test_the_default_backend_is_the_space() -> None:
    async with FakeSpace() as space:
        settings = Settings(PHI4_SPACE_URL=space.url, HF_ENDPOINT=space.hub_url)
        session, *chunks = await answer(
            messages=[user("Hello Space")], settings=settings, return_conversation=True
        )
        assert session.backend == "space"
        assert "".join(chunks) == space.answer
        assert space.requests[-1].history[0]["content"] == "Hello Space"


@pytest.mark.parametrize(
    ("media", "needle"),
    [([(b"just some text", "notes.txt")], "notes.txt"), ([(b"\x89PNG broken", "x.png")], "")],
)
async def test_media_that_is_not_a_readable_image_or_audio_is_refused(
    srv: FakeOpenAIServer, backend: OpenAIBackend, media: list[Any], needle: str
) -> None:
    with pytest.raises(UnreadableMedia) as caught:
        await answer(messages=[user("?")], media=media, backend=backend)
    assert needle in caught.value.user_message
    assert srv.chat_requests == []


async def test_a_missing_file_is_unreadable_media(backend: OpenAIBackend, tmp_path: Path) -> None:
    with pytest.raises(UnreadableMedia) as caught:
        await answer(messages=[user("?")], media=[(tmp_path / "gone.png", None)], backend=backend)
    assert "gone.png" in caught.value.user_message


async def test_there_must_be_a_user_message_to_answer(backend: OpenAIBackend) -> None:
    with pytest.raises(EmptyConversation):
        await answer(messages=[{"role": "system", "content": "Hi"}], backend=backend)


def test_message_content_parts_and_roles_are_read_like_openai() -> None:
    assert text_of(None) == ""
    parts = [{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "a"}]
    assert text_of(parts) == "a"
    system, turns = split_messages(
        [{"role": "developer", "content": "A"}, {"role": "system", "content": "B"}, user("q")]
    )
    assert system == "A\n\nB"
    assert [(t.role, t.text) for t in turns] == [("user", "q")]
    with pytest.raises(ValueError, match="tool"):
        split_messages([{"role": "tool", "content": "x"}])
