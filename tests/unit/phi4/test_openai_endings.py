"""How an OpenAI-compatible stream ends, and how a refusal is told from an outage.

Against the fake server replaying what real servers do (`tests/fakes/server_shapes.py`):
llama.cpp's empty HTTP 200, its 500s for media a text-only model cannot take, vLLM's 400
for a prompt over its window, a stream cut at the length limit or ended without its end.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.phi4.chain import FallbackChain
from bot.phi4.conversation import Attachment, Conversation, Turn
from bot.phi4.errors import (
    AnswerBrokenOff,
    AnswerCutAtLength,
    BackendUnavailable,
    ContextOverflow,
    EmptyStream,
    MediaNotSupported,
    QuotaExceeded,
)
from bot.phi4.openai_backend import OpenAIBackend
from tests.fakes.openai_server import DEFAULT_MODEL, FakeOpenAIServer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(48000)


def ask(text: str = "Hi", *attachments: Attachment) -> Conversation:
    return Conversation((Turn("user", text, attachments),))


def photo() -> Attachment:
    return Attachment(PNG, "image/png", "photo.png")


def voice() -> Attachment:
    return Attachment(WAV, "audio/wav", "voice.wav")


@pytest.fixture
async def srv() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        yield server


def backend(srv: FakeOpenAIServer, **kwargs: object) -> OpenAIBackend:
    options: dict = {"api_key": None, "model": DEFAULT_MODEL, "max_retries": 1} | kwargs
    return OpenAIBackend(srv.base_url, **options)


async def collect(b: OpenAIBackend | FallbackChain, conversation: Conversation) -> str:
    return "".join([chunk async for chunk in b.stream(conversation)])


async def test_an_empty_http_200_is_a_failure_with_its_cause_and_the_request_size(
    srv: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    srv.fail_next("empty")
    async with backend(srv) as b:
        with pytest.raises(EmptyStream) as caught:
            await collect(b, ask("a question"))
        assert await collect(b, ask("the next one")) == srv.answer
    assert caught.value.user_message.startswith(
        "The model server closed the answer without sending anything."
    )
    sent = caught.value.request_bytes
    assert sent > 0
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"a request of {sent} bytes: 1 turns" in line for line in warning), warning


async def test_a_stream_without_its_end_after_text_keeps_the_text_and_is_broken_off(
    srv: FakeOpenAIServer,
) -> None:
    srv.fail_next("no-end", after=2)
    received: list[str] = []
    async with backend(srv) as b:
        with pytest.raises(AnswerBrokenOff) as caught:
            async for chunk in b.stream(ask()):
                received.append(chunk)
    assert "".join(received) == "".join(srv.pieces()[:2])
    assert "broke off mid-answer" in caught.value.user_message
    assert isinstance(caught.value, BackendUnavailable)  # as a dropped connection is


async def test_a_stream_without_its_end_or_any_text_is_an_empty_stream(
    srv: FakeOpenAIServer,
) -> None:
    srv.fail_next("no-end", after=0)
    async with backend(srv) as b:
        with pytest.raises(EmptyStream):
            await collect(b, ask())


async def test_an_answer_cut_at_the_length_limit_gives_every_chunk_then_says_so(
    srv: FakeOpenAIServer,
) -> None:
    srv.answer = "one two three four five six seven"
    srv.fail_next("length", after=3)
    received: list[str] = []
    async with backend(srv) as b:
        with pytest.raises(AnswerCutAtLength) as caught:
            async for chunk in b.stream(ask()):
                received.append(chunk)
    assert "".join(received) == caught.value.text == "".join(srv.pieces()[:3])
    assert "cut at the model's length limit" in caught.value.user_message


async def test_max_tokens_is_sent_only_when_set(srv: FakeOpenAIServer) -> None:
    async with backend(srv) as plain, backend(srv, max_tokens=3) as capped:
        await collect(plain, ask())
        await collect(capped, ask())
    assert "max_tokens" not in srv.chat_requests[0].json
    assert srv.chat_requests[1].json["max_tokens"] == 3


async def test_vllms_400_for_a_prompt_over_its_window_is_a_context_overflow_with_numbers(
    srv: FakeOpenAIServer,
) -> None:
    srv.window = 100
    async with backend(srv) as b:
        with pytest.raises(ContextOverflow) as caught:
            await collect(b, ask("word " * 200))
    assert caught.value.window == 100
    assert caught.value.requested is not None and caught.value.requested > 100
    assert len(srv.chat_requests) == 1, "a request that cannot fit is not retried"


async def test_github_models_413_over_its_token_limit_is_a_context_overflow(
    srv: FakeOpenAIServer,
) -> None:
    srv.fail_next("context-github")
    async with backend(srv) as b:
        with pytest.raises(ContextOverflow) as caught:
            await collect(b, ask())
    assert caught.value.window == 8000
    assert "too long" in caught.value.user_message


async def test_llamas_empty_200_for_a_prompt_over_its_window_is_an_empty_stream(
    srv: FakeOpenAIServer,
) -> None:
    srv.shape, srv.window = "llama-cpp-python", 100
    async with backend(srv) as b:
        assert await collect(b, ask("short")) == srv.answer
        with pytest.raises(EmptyStream) as caught:
            await collect(b, ask("word " * 200))
    assert caught.value.request_bytes > 1000


@pytest.mark.parametrize(("attachment", "noun"), [(photo, "images"), (voice, "audio")])
async def test_media_refused_by_a_server_that_answers_text_is_remembered_not_retried(
    srv: FakeOpenAIServer, attachment: object, noun: str
) -> None:
    assert callable(attachment)
    srv.shape, srv.text_only = "llama-cpp-python", True
    async with backend(srv) as b:
        assert await collect(b, ask("text first")) == srv.answer
        with pytest.raises(MediaNotSupported) as caught:
            await collect(b, ask("and this?", attachment()))
        assert len(srv.chat_requests) == 2, "a refusal is not retried"
        assert noun in caught.value.user_message
        assert b.accepts == frozenset({"image", "audio"}) - {noun.removesuffix("s")}
        with pytest.raises(MediaNotSupported):
            await collect(b, ask("again", attachment()))
        assert len(srv.chat_requests) == 2, "a remembered refusal asks the server nothing"
        assert await collect(b, ask("text still works")) == srv.answer


async def test_a_media_500_from_a_server_never_heard_from_is_judged_by_its_probe(
    srv: FakeOpenAIServer,
) -> None:
    srv.fail_next("500")
    async with backend(srv) as b:
        with pytest.raises(MediaNotSupported):
            await collect(b, ask("what is this?", photo()))
    assert [r.path for r in srv.requests] == ["/v1/chat/completions", "/v1/models"]


async def test_a_media_request_failing_while_the_server_is_down_is_an_outage(
    srv: FakeOpenAIServer,
) -> None:
    srv.down = True  # every request, the probe too, draws a gateway's 502
    async with backend(srv, max_retries=0) as b:
        with pytest.raises(BackendUnavailable) as caught:
            await collect(b, ask("what is this?", photo()))
        assert not isinstance(caught.value, MediaNotSupported)
        assert "image" in b.accepts


async def test_an_overloaded_server_is_not_said_to_refuse_media(srv: FakeOpenAIServer) -> None:
    async with backend(srv) as b:
        assert await collect(b, ask("text first")) == srv.answer
        srv.fail_next("503", times=2)
        with pytest.raises(QuotaExceeded):
            await collect(b, ask("what is this?", photo()))
        assert "image" in b.accepts


async def test_the_chain_moves_media_a_server_refused_to_one_that_takes_it() -> None:
    async with FakeOpenAIServer() as text_only, FakeOpenAIServer() as vision:
        text_only.shape, text_only.text_only = "llama-cpp-python", True
        vision.answer = "A photo."
        first, second = backend(text_only), backend(vision)
        async with FallbackChain([first, second]) as chain:
            assert await collect(chain, ask("hello")) == text_only.answer
            assert await collect(chain, ask("what is this?", photo())) == "A photo."
            assert await collect(chain, ask("and this?", photo())) == "A photo."
        assert len(text_only.chat_requests) == 2, "the refusal was remembered"
        assert len(vision.chat_requests) == 2


async def test_after_a_refusal_earlier_photos_stay_out_and_text_turns_are_answered(
    srv: FakeOpenAIServer,
) -> None:
    srv.shape, srv.text_only = "llama-cpp-python", True
    asked = ask("what is this?", photo())
    async with backend(srv) as b:
        assert await collect(b, ask("hello")) == srv.answer
        with pytest.raises(MediaNotSupported):
            await collect(b, asked)
        follow_up = Conversation((*asked.turns, Turn("assistant", "?"), Turn("user", "And?")))
        assert await collect(b, follow_up) == srv.answer
    sent = srv.chat_requests[-1].json["messages"]
    assert sent[0]["content"] == "[image] what is this?"
