"""OpenAIBackend over real HTTP against the fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from bot.phi4.conversation import Attachment, Conversation, Turn
from bot.phi4.errors import (
    AccessDenied,
    BackendTimeout,
    BackendUnavailable,
    BadAnswer,
    ConnectionRefused,
    ContextOverflow,
    EmptyConversation,
    FailureClass,
    MediaNotSupported,
    NoChatEndpoint,
    Phi4Error,
    QuotaExceeded,
    ServerNotFound,
    UnknownModel,
)
from bot.phi4.openai_backend import OpenAIBackend
from tests.fakes.openai_server import DEFAULT_MODEL, FakeOpenAIServer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(200)
MP3 = b"ID3\x03\x00" + bytes(100)


def photo(data: bytes = PNG) -> Attachment:
    return Attachment(data, "image/png", "photo.png")


def voice(data: bytes = WAV, mime: str = "audio/wav") -> Attachment:
    return Attachment(data, mime, "voice.wav")


def ask(text: str = "Hi", *attachments: Attachment, system: str | None = None) -> Conversation:
    return Conversation((Turn("user", text, attachments),), system_prompt=system)


@pytest.fixture
async def srv() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        yield server


def backend(srv: FakeOpenAIServer, **kwargs: object) -> OpenAIBackend:
    options: dict = {"api_key": None, "model": DEFAULT_MODEL, "max_retries": 0} | kwargs
    return OpenAIBackend(srv.base_url, **options)


async def collect(b: OpenAIBackend, conversation: Conversation) -> str:
    return "".join([chunk async for chunk in b.stream(conversation)])


async def test_chunks_arrive_before_the_server_has_sent_the_last(srv: FakeOpenAIServer) -> None:
    srv.answer = "one two three four five six"
    srv.pause_after = 1
    async with backend(srv) as b:
        chunks = b.stream(ask())
        first = await anext(chunks)
        assert first == srv.pieces()[0]
        assert srv.chat_requests[-1].chunks_sent == 1 < len(srv.pieces())
        srv.resume()
        rest = [chunk async for chunk in chunks]
    assert first + "".join(rest) == srv.answer


@pytest.mark.parametrize(
    ("answer", "size"),
    [
        ("Hello, world!", 1),
        ("Привет 👋🏽 — ünïcödé\nline two\n\n```py\nx = 1\n```", 3),
        ("x" * 5000, 7),
    ],
)
async def test_the_chunks_concatenate_to_exactly_the_answer(
    srv: FakeOpenAIServer, answer: str, size: int
) -> None:
    srv.answer, srv.chunk_size = answer, size
    async with backend(srv) as b:
        assert await collect(b, ask()) == answer


async def test_request_carries_system_prompt_history_and_media_in_order(
    srv: FakeOpenAIServer,
) -> None:
    conversation = Conversation(
        (
            Turn("user", "What is this?", (photo(),)),
            Turn("assistant", "A picture."),
            Turn("user", "And this?", (voice(), voice(MP3, "audio/mpeg"))),
        ),
        system_prompt="Be brief.",
    )
    async with backend(srv, vision_model="vision") as b:
        await collect(b, conversation)
    body = srv.chat_requests[-1].json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}  # so a usage chunk must be skipped
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == "Be brief."
    assert messages[2]["content"] == "A picture."
    text, image = messages[1]["content"]
    assert text == {"type": "text", "text": "What is this?"}
    prefix, _, encoded = image["image_url"]["url"].partition(",")
    assert prefix == "data:image/png;base64"
    assert base64.b64decode(encoded) == PNG
    _, wav, mp3 = messages[3]["content"]
    assert wav["type"] == "input_audio" and wav["input_audio"]["format"] == "wav"
    assert base64.b64decode(wav["input_audio"]["data"]) == WAV
    assert mp3["input_audio"]["format"] == "mp3"
    assert base64.b64decode(mp3["input_audio"]["data"]) == MP3


async def test_media_without_text_sends_only_media_parts(srv: FakeOpenAIServer) -> None:
    async with backend(srv) as b:
        await collect(b, ask("", photo()))
    (part,) = srv.chat_requests[-1].json["messages"][0]["content"]
    assert part["type"] == "image_url"


async def test_api_key_is_sent_as_bearer_and_empty_when_unset(srv: FakeOpenAIServer) -> None:
    async with backend(srv) as b:
        await collect(b, ask())
    assert srv.requests[-1].headers["Authorization"] == "Bearer EMPTY"
    srv.api_key = "sk-test-123"
    async with backend(srv, api_key="sk-test-123") as b:
        await collect(b, ask())
    assert srv.requests[-1].headers["Authorization"] == "Bearer sk-test-123"


@pytest.mark.parametrize(
    ("attachments", "expected"),
    [
        ((), DEFAULT_MODEL),
        ((photo(),), "vision"),
        ((voice(),), "speech"),
        ((photo(), voice()), "vision"),
    ],
)
async def test_lora_model_follows_the_media_of_the_conversation(
    srv: FakeOpenAIServer, attachments: tuple[Attachment, ...], expected: str
) -> None:
    async with backend(srv, vision_model="vision", speech_model="speech") as b:
        await collect(b, ask("x", *attachments))
    assert srv.chat_requests[-1].json["model"] == expected


async def test_without_adapters_every_request_uses_the_base_model(srv: FakeOpenAIServer) -> None:
    async with backend(srv) as b:
        await collect(b, ask("x", photo(), voice()))
    assert srv.chat_requests[-1].json["model"] == DEFAULT_MODEL


@pytest.mark.parametrize(
    ("accepts", "attachment", "sentence"),
    [
        (frozenset(), photo(), "This model takes text only, not images."),
        (frozenset({"image"}), voice(), "This model takes text and images, not audio."),
        (frozenset({"audio"}), photo(), "This model takes text and audio, not images."),
    ],
)
async def test_media_the_backend_cannot_take_is_refused_before_any_request(
    srv: FakeOpenAIServer, accepts: frozenset[str], attachment: Attachment, sentence: str
) -> None:
    async with backend(srv, accepts=accepts) as b:
        with pytest.raises(MediaNotSupported) as caught:
            await collect(b, ask("x", attachment))
    assert caught.value.user_message == sentence
    assert srv.requests == []


async def test_server_refusing_images_like_ollama_is_media_not_supported(
    srv: FakeOpenAIServer,
) -> None:
    srv.text_only = True
    async with backend(srv) as b:
        with pytest.raises(MediaNotSupported) as caught:
            await collect(b, ask("x", photo()))
        assert "images" in caught.value.user_message
        assert await collect(b, ask("text is fine")) == srv.answer


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        ("500", BackendUnavailable),
        ("503", QuotaExceeded),
        ("429", QuotaExceeded),
        ("error-event", BackendUnavailable),
        ("drop", BackendUnavailable),
    ],
)
async def test_server_failures_become_typed_errors(
    srv: FakeOpenAIServer, failure: str, error: type[Phi4Error]
) -> None:
    srv.fail_next(failure, after=2)
    async with backend(srv) as b:
        with pytest.raises(error):
            await collect(b, ask())


async def test_failure_after_some_chunks_keeps_the_chunks_already_yielded(
    srv: FakeOpenAIServer,
) -> None:
    srv.fail_next("drop", after=2)
    received: list[str] = []
    async with backend(srv) as b:
        with pytest.raises(BackendUnavailable) as caught:
            async for chunk in b.stream(ask()):
                received.append(chunk)
    assert "".join(received) == "".join(srv.pieces()[:2])  # pieces read together come joined
    assert "broke off" in caught.value.user_message


async def test_an_error_event_mid_stream_says_the_model_failed_while_answering(
    srv: FakeOpenAIServer,
) -> None:
    srv.fail_next("error-event", after=1)
    async with backend(srv) as b:
        with pytest.raises(BackendUnavailable) as caught:
            await collect(b, ask())
    assert caught.value.user_message == "The model failed while answering. Please try again."
    assert "CUDA out of memory" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "message", "error", "sentence"),
    [
        (400, "This model's maximum context length is 131072 tokens", ContextOverflow, "too long"),
        (400, "temperature must be positive", BadAnswer, "refused this message"),
        (422, "Unprocessable entity", BadAnswer, "refused this message"),
    ],
)
async def test_other_refusals_are_told_in_our_words_never_the_servers(
    srv: FakeOpenAIServer, status: int, message: str, error: type[Phi4Error], sentence: str
) -> None:
    srv.fail_next("status", status=status, message=message)
    async with backend(srv) as b:
        with pytest.raises(error) as caught:
            await collect(b, ask("x"))
    assert sentence in caught.value.user_message
    assert message not in caught.value.user_message
    assert message in str(caught.value)  # the operator's log still reads it


NOT_SET_UP = "I am not set up to answer yet"


async def test_a_rejected_key_is_a_configuration_failure_without_the_key(
    srv: FakeOpenAIServer,
) -> None:
    srv.api_key = "the-right-key"
    async with backend(srv, api_key="sk-wrong-secret") as b:
        with pytest.raises(AccessDenied) as caught:
            await collect(b, ask())
        with pytest.raises(AccessDenied):
            await b.probe()
    assert caught.value.failure_class is FailureClass.CONFIGURATION
    assert caught.value.user_message.startswith(NOT_SET_UP)
    assert "try again in a minute" not in caught.value.user_message
    assert "sk-wrong-secret" not in caught.value.user_message
    assert "sk-wrong-secret" not in str(caught.value)


async def test_an_unknown_model_is_named_to_the_operator(srv: FakeOpenAIServer) -> None:
    async with backend(srv, model="phi-9") as b:
        with pytest.raises(UnknownModel) as caught:
            await collect(b, ask())
    assert caught.value.model == "phi-9" and "phi-9" in str(caught.value)
    assert caught.value.user_message.startswith(NOT_SET_UP)


async def test_the_probe_lists_what_the_server_serves_when_our_model_is_not_there(
    srv: FakeOpenAIServer,
) -> None:
    async with backend(srv, model="phi-9") as b:
        with pytest.raises(UnknownModel) as caught:
            await b.probe()
    assert caught.value.served == tuple(srv.models)


async def test_the_probe_takes_ollamas_latest_tag_for_the_bare_name(srv: FakeOpenAIServer) -> None:
    srv.models = ["phi4:latest", "phi4-mini:latest"]
    async with backend(srv, model="phi4") as b:
        assert "phi4:latest" in await b.probe()


async def test_an_address_without_the_api_root_is_no_chat_endpoint(srv: FakeOpenAIServer) -> None:
    srv.fail_next("status", status=404, message="Not Found")
    async with backend(srv) as b:
        with pytest.raises(NoChatEndpoint):
            await collect(b, ask())


async def test_a_refused_local_port_is_a_configuration_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAIBackend(
        f"http://127.0.0.1:{port}/v1", api_key=None, model="m", max_retries=0, connect_timeout=2
    )
    async with b:
        with pytest.raises(ConnectionRefused) as caught:
            await collect(b, ask())
        with pytest.raises(ConnectionRefused):
            await b.probe()
    assert caught.value.where == f"http://127.0.0.1:{port}/v1"
    assert caught.value.user_message.startswith(NOT_SET_UP)


async def test_a_host_name_that_does_not_resolve_is_a_configuration_failure() -> None:
    b = OpenAIBackend("http://phi4.invalid/v1", api_key=None, model="m", max_retries=0)
    async with b:
        with pytest.raises(ServerNotFound) as caught:
            await collect(b, ask())
        with pytest.raises(ServerNotFound):
            await b.probe()
    assert "phi4.invalid" in str(caught.value)


@pytest.mark.parametrize("failure", ["500", "503", "429", "drop"])
async def test_server_trouble_stays_transient_and_asks_to_try_again(
    srv: FakeOpenAIServer, failure: str
) -> None:
    srv.fail_next(failure, after=2)
    async with backend(srv) as b:
        with pytest.raises(Phi4Error) as caught:
            await collect(b, ask())
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert "try again" in caught.value.user_message.lower()


async def test_a_stalled_stream_times_out(srv: FakeOpenAIServer) -> None:
    srv.fail_next("stall", after=1)
    async with backend(srv, stream_timeout=0.3) as b:
        with pytest.raises(BackendTimeout):
            await asyncio.wait_for(collect(b, ask()), 5)


async def test_keepalive_comments_do_not_hide_a_stall(srv: FakeOpenAIServer) -> None:
    """SSE comments reset the socket read timeout, so only the per-chunk guard catches this."""
    srv.fail_next("stall", after=1)
    srv.keepalive = 0.05
    async with backend(srv, stream_timeout=0.4) as b:
        with pytest.raises(BackendTimeout):
            await asyncio.wait_for(collect(b, ask()), 5)


async def test_stopping_the_iteration_closes_the_stream(srv: FakeOpenAIServer) -> None:
    srv.answer = "word " * 400
    srv.chunk_delay = 0.005
    async with backend(srv) as b:
        chunks = b.stream(ask())
        await anext(chunks)
        assert isinstance(chunks, AsyncGenerator)  # closing it is what the test is about
        await chunks.aclose()
        await asyncio.wait_for(srv.chat_requests[-1].disconnected.wait(), 5)
    assert srv.chat_requests[-1].chunks_sent < len(srv.pieces())


async def test_cancelling_the_consumer_task_closes_the_stream(srv: FakeOpenAIServer) -> None:
    srv.answer = "word " * 400
    srv.chunk_delay = 0.005
    first = asyncio.Event()

    async def consume(b: OpenAIBackend) -> None:
        async for _ in b.stream(ask()):
            first.set()

    async with backend(srv) as b:
        task = asyncio.create_task(consume(b))
        await asyncio.wait_for(first.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(srv.chat_requests[-1].disconnected.wait(), 5)


async def test_one_transient_failure_is_retried_by_default(srv: FakeOpenAIServer) -> None:
    srv.fail_next("500")
    async with OpenAIBackend(srv.base_url, api_key=None, model=DEFAULT_MODEL) as b:
        assert await collect(b, ask()) == srv.answer
    assert len(srv.chat_requests) == 2


async def test_query_in_the_base_url_is_sent_on_every_call(srv: FakeOpenAIServer) -> None:
    url = srv.base_url + "?api-version=2024-05-01-preview"
    async with OpenAIBackend(url, api_key=None, model=DEFAULT_MODEL, max_retries=0) as b:
        await collect(b, ask())
        await b.probe()
    assert all(r.query == {"api-version": "2024-05-01-preview"} for r in srv.requests)


async def test_probe_lists_models_and_flags_a_missing_one(srv: FakeOpenAIServer) -> None:
    async with backend(srv) as b:
        assert DEFAULT_MODEL in await b.probe()
    async with backend(srv, vision_model="vision-lora") as b:
        assert "not listed: vision-lora" in await b.probe()


async def test_an_empty_conversation_is_refused(srv: FakeOpenAIServer) -> None:
    async with backend(srv) as b:
        with pytest.raises(EmptyConversation):
            await collect(b, Conversation(()))
    assert srv.requests == []


def test_unknown_media_kinds_in_accepts_are_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="images"):
        OpenAIBackend("http://x/v1", api_key=None, model="m", accepts=frozenset({"images"}))


async def test_credentials_in_the_base_url_are_sent_as_basic_auth(srv: FakeOpenAIServer) -> None:
    url = srv.base_url.replace("http://", "http://user:pa55@")
    async with OpenAIBackend(url, api_key=None, model=DEFAULT_MODEL, max_retries=0) as b:
        assert await collect(b, ask()) == srv.answer
    login = base64.b64encode(b"user:pa55").decode()
    assert srv.chat_requests[-1].headers["Authorization"] == f"Basic {login}"
