"""How an OpenAI-compatible stream ends: cut at the length limit, or empty."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.phi4.conversation import Conversation, Turn
from bot.phi4.errors import AnswerCutAtLength, EmptyStream
from bot.phi4.openai_backend import OpenAIBackend
from tests.fakes.openai_server import DEFAULT_MODEL, FakeOpenAIServer

ASK = Conversation((Turn("user", "Hi"),))


@pytest.fixture
async def srv() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        server.answer, server.chunk_size = "abcdefghijklmnop", 4
        yield server


async def test_an_answer_cut_at_the_length_limit_gives_its_text_then_says_so(
    srv: FakeOpenAIServer,
) -> None:
    srv.fail_next("length", after=2)
    got: list[str] = []
    async with OpenAIBackend(srv.base_url, api_key=None, model=DEFAULT_MODEL) as backend:
        with pytest.raises(AnswerCutAtLength) as caught:
            async for chunk in backend.stream(ASK):
                got.append(chunk)
        assert "".join(got) == "abcdefgh"
        assert "length limit" in caught.value.user_message
        assert "".join([c async for c in backend.stream(ASK)]) == srv.answer  # then whole


async def test_an_empty_answer_is_a_failure_naming_the_request_size(
    srv: FakeOpenAIServer,
) -> None:
    srv.fail_next("empty")
    async with OpenAIBackend(
        srv.base_url, api_key=None, model=DEFAULT_MODEL, max_retries=0
    ) as backend:
        with pytest.raises(EmptyStream) as caught:
            [c async for c in backend.stream(ASK)]
    assert "without sending anything" in str(caught.value)
    assert "bytes" in str(caught.value)
