"""FallbackChain over real HTTP: the fake Space first, the fake OpenAI server behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.phi4 import Phi4Settings, create_backend
from bot.phi4.chain import FallbackChain
from bot.phi4.conversation import Attachment, Conversation, QueuePosition, Turn
from bot.phi4.errors import BackendUnavailable, EmptyConversation, MediaNotSupported
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.space import FakeSpace

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
ASK = Conversation((Turn("user", "Hi"),))
PHOTO = Conversation((Turn("user", "What is this?", (Attachment(PNG, "image/png", "p.png"),)),))


@pytest.fixture
async def space() -> AsyncIterator[FakeSpace]:
    async with FakeSpace() as fake:
        yield fake


@pytest.fixture
async def srv() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        yield server


def chain_of(order: str, space: FakeSpace, srv: FakeOpenAIServer, **values: Any) -> FallbackChain:
    settings = Phi4Settings(
        _env_file=None,
        PHI4_BACKEND=order,
        PHI4_SPACE_URL=space.url,
        HF_ENDPOINT=space.hub_url,
        OPENAI_BASE_URL=srv.base_url,
        PHI4_CONNECT_TIMEOUT="2",
        **values,
    )
    backend = create_backend(settings)
    assert isinstance(backend, FallbackChain)
    return backend


async def collect(chain: FallbackChain, conversation: Conversation = ASK, **kw: Any) -> str:
    return "".join([chunk async for chunk in chain.stream(conversation, **kw)])


def test_a_chain_is_named_by_its_members_in_order() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        Phi4Settings(_env_file=None, PHI4_BACKEND="space,gpt")
    settings = Phi4Settings(_env_file=None, PHI4_BACKEND=" OpenAI , space")
    assert settings.backend_chain == ("openai", "space")


async def test_a_space_out_of_gpu_quota_hands_the_turn_to_the_openai_server(
    space: FakeSpace, srv: FakeOpenAIServer
) -> None:
    space.queue_ahead = 2
    space.fail_next("quota")
    seen: list[QueuePosition] = []
    async with chain_of("space,openai", space, srv) as chain:
        assert await collect(chain, on_queue=seen.append) == srv.answer
    assert [p.rank for p in seen][:2] == [2, 1], "the Space's queue notices reach the caller"
    assert len(space.requests) == 1 and len(srv.chat_requests) == 1


async def test_an_answering_first_backend_is_the_only_one_asked(
    space: FakeSpace, srv: FakeOpenAIServer
) -> None:
    async with chain_of("space,openai", space, srv) as chain:
        assert await collect(chain) == space.answer
    assert srv.chat_requests == []


async def test_an_unreachable_server_falls_back_to_the_space(
    space: FakeSpace, srv: FakeOpenAIServer
) -> None:
    srv.fail_next("503")
    async with chain_of("openai,space", space, srv) as chain:
        assert await collect(chain) == space.answer


async def test_media_the_first_backend_cannot_take_goes_to_one_that_can(
    space: FakeSpace, srv: FakeOpenAIServer
) -> None:
    async with chain_of("openai,space", space, srv, PHI4_OPENAI_MEDIA="") as chain:
        assert chain.accepts == {"image", "audio"}
        assert await collect(chain, PHOTO) == space.answer
        assert await collect(chain) == srv.answer, "text still goes to the first backend"
    assert len(srv.chat_requests) == 1 and len(space.uploads) == 1


async def test_a_server_refusing_media_it_was_said_to_take_falls_back(
    space: FakeSpace, srv: FakeOpenAIServer
) -> None:
    srv.text_only = True  # configured for images, but answers 400 like Ollama
    async with chain_of("openai,space", space, srv) as chain:
        assert await collect(chain, PHOTO) == space.answer
    assert len(srv.chat_requests) == 1


async def test_media_no_backend_takes_gets_the_first_backends_refusal(
    srv: FakeOpenAIServer,
) -> None:
    members = [create_backend(_openai_only(srv)), create_backend(_openai_only(srv))]
    async with FallbackChain(members) as chain:
        with pytest.raises(MediaNotSupported) as refused:
            await collect(chain, PHOTO)
    assert "text only" in refused.value.user_message
    assert srv.chat_requests == []


async def test_a_request_failure_is_not_sent_down_the_chain(
    space: FakeSpace, srv: FakeOpenAIServer
) -> None:
    async with chain_of("space,openai", space, srv) as chain:
        with pytest.raises(EmptyConversation):
            await collect(chain, Conversation(()))
    assert srv.chat_requests == []


async def test_a_failure_after_text_ends_the_answer_without_asking_the_next(
    space: FakeSpace, srv: FakeOpenAIServer
) -> None:
    space.fail_next("broken", after=2)
    shown: list[str] = []
    async with chain_of("space,openai", space, srv) as chain:
        with pytest.raises(BackendUnavailable):
            async for chunk in chain.stream(ASK):
                shown.append(chunk)
    assert shown and srv.chat_requests == []


async def test_when_every_backend_fails_the_last_ones_error_is_raised_once(
    space: FakeSpace, srv: FakeOpenAIServer
) -> None:
    space.fail_next("quota")
    srv.fail_next("503")
    async with chain_of("space,openai", space, srv) as chain:
        with pytest.raises(Exception) as failure:
            await collect(chain)
    assert "503" in str(failure.value)


async def test_stopping_closes_the_stream_of_the_backend_serving_it(
    space: FakeSpace, srv: FakeOpenAIServer
) -> None:
    space.fail_next("quota")
    srv.pause_after = 1
    async with chain_of("space,openai", space, srv) as chain:
        stream = chain.stream(ASK)
        await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        await srv.chat_requests[-1].disconnected.wait()


async def test_probe_is_fine_while_one_backend_answers(
    space: FakeSpace, srv: FakeOpenAIServer
) -> None:
    await srv.kill()
    async with chain_of("openai,space", space, srv) as chain:
        line = await chain.probe()
    assert line.startswith("openai: ") and "space: " in line


def _openai_only(srv: FakeOpenAIServer) -> Phi4Settings:
    return Phi4Settings(
        _env_file=None, PHI4_BACKEND="openai", OPENAI_BASE_URL=srv.base_url, PHI4_OPENAI_MEDIA=""
    )


async def test_a_media_refusal_is_remembered_so_the_next_photo_goes_straight_on(
    space: FakeSpace, srv: FakeOpenAIServer
) -> None:
    srv.shape, srv.text_only = "llama-cpp-python", True  # llama.cpp's 200 with no body
    async with chain_of("openai,space", space, srv) as chain:
        assert await collect(chain) == srv.answer
        assert await collect(chain, PHOTO) == space.answer
        assert "image" not in chain.backends[0].accepts
        assert await collect(chain, PHOTO) == space.answer
    assert len(srv.chat_requests) == 2, "the second photo never went to the server refusing it"
