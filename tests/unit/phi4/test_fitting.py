"""Each server gets only what fits its window, learned from what it states or refuses.

Runs the real `OpenAIBackend` behind `WindowFitting` against the fake OpenAI server shaped
as vLLM, llama-cpp-python and llama.cpp's own server, each with a 1,200-token window
counted by a real tokenizer of Phi-4's family.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.phi4.backend import Backend
from bot.phi4.conversation import Conversation, Turn
from bot.phi4.errors import EmptyStream, TurnTooLong
from bot.phi4.fitting import WindowFitting
from bot.phi4.openai_backend import OpenAIBackend
from tests.fakes.openai_server import DEFAULT_MODEL, FakeOpenAIServer

WINDOW = 1200
LONG = (
    "Tell me more about the history of the lighthouse on the northern pier, the keepers "
    "who trimmed its wicks every four hours, and the boats that came home early in winter. "
)


@pytest.fixture
async def srv() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        server.window = WINDOW
        server.answer = "The keepers lived in the cottage beside it. " * 4
        yield server


def fitted(srv: FakeOpenAIServer, *, window: int = 131_072) -> WindowFitting:
    server = OpenAIBackend(srv.base_url, api_key=None, model=DEFAULT_MODEL, max_retries=0)
    return WindowFitting(server, window=window, answer_tokens=4096)


async def converse(backend: Backend, turns: int) -> list[str]:
    """`turns` long questions, each answer added to the history as a chat would."""
    history: list[Turn] = []
    answers: list[str] = []
    for n in range(turns):
        history.append(Turn("user", f"({n}) " + LONG * 3))
        conversation = Conversation(tuple(history), system_prompt="Answer briefly.")
        answer = "".join([chunk async for chunk in backend.stream(conversation)])
        answers.append(answer)
        history.append(Turn("assistant", answer))
    return answers


@pytest.mark.parametrize("shape", ["vllm", "llama-server"])
async def test_a_stated_window_is_read_and_never_overflowed(
    srv: FakeOpenAIServer, shape: str
) -> None:
    srv.shape = shape
    async with fitted(srv) as backend:
        answers = await converse(backend, 30)
        assert backend.stated_window == WINDOW
    assert all(a == srv.answer for a in answers)
    assert len(srv.chat_requests) == 30  # no request refused, none repeated
    assert max(srv.prompt_tokens) < WINDOW * 3 // 4 + 1  # room was left for the answer
    assert min(srv.prompt_tokens[5:]) > WINDOW // 3  # and the window is used, not wasted


async def test_llama_cpp_python_empty_answer_to_an_overflow_is_learned_from_and_retried(
    srv: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    srv.shape = "llama-cpp-python"
    caplog.set_level(logging.DEBUG, logger="bot.phi4")
    async with fitted(srv) as backend:
        answers = await converse(backend, 30)
        assert backend.stated_window == WINDOW
    assert all(a == srv.answer for a in answers)
    streamed = [r for r in srv.chat_requests if r.json["stream"]]
    asked = [r for r in srv.chat_requests if not r.json["stream"]]
    assert len(asked) == 1 and asked[0].json["max_tokens"] == 1  # asked once for its window
    assert len(streamed) == 31  # one request was refused (empty) and asked again
    kept = [r.getMessage() for r in caplog.records if r.getMessage().startswith("context: ")]
    assert len(kept) == 31 and "window 1200" in kept[-1]


async def test_a_server_counting_three_times_the_estimate_is_learned_from_once(
    srv: FakeOpenAIServer,
) -> None:
    srv.shape, srv.token_scale = "llama-cpp-python", 3.0
    async with fitted(srv) as backend:
        answers = await converse(backend, 20)
        assert backend.undercount > 2.0  # the estimate errs high, so less than 3
    assert all(a == srv.answer for a in answers)
    refused = [t for t in srv.prompt_tokens if t >= WINDOW]
    assert len(refused) <= 2  # not one refusal per turn: later prompts fit the first time


async def test_vllm_refusal_names_the_window_and_the_turn_is_answered(
    srv: FakeOpenAIServer,
) -> None:
    srv.shape, srv.states_window = "vllm", False
    async with fitted(srv, window=4000) as backend:
        answers = await converse(backend, 12)
        assert backend.stated_window == WINDOW
    assert all(a == srv.answer for a in answers)
    refused = [t for t in srv.prompt_tokens if t >= WINDOW]
    assert len(refused) == 1
    assert len(srv.chat_requests) == 13


async def test_an_empty_answer_that_is_not_an_overflow_is_a_clear_failure(
    srv: FakeOpenAIServer,
) -> None:
    srv.shape = "llama-cpp-python"
    srv.fail_next("empty")
    async with fitted(srv) as backend:
        with pytest.raises(EmptyStream) as caught:
            await converse(backend, 1)
        assert "without sending anything" in caught.value.user_message
        assert await converse(backend, 1) == [srv.answer]  # the next message is answered


async def test_a_message_too_long_for_the_window_is_refused_before_any_request(
    srv: FakeOpenAIServer,
) -> None:
    srv.shape = "vllm"
    async with fitted(srv) as backend:
        huge = Conversation((Turn("user", LONG * 60),))
        with pytest.raises(TurnTooLong) as caught:
            [chunk async for chunk in backend.stream(huge)]
    assert "shorten its text" in caught.value.user_message
    assert srv.chat_requests == []


@pytest.mark.parametrize(
    ("shape", "said"),
    [
        ("vllm", "context window 1200 tokens (as the server states)"),
        ("llama-server", "context window 1200 tokens (as the server states)"),
        ("llama-cpp-python", "context window 131072 tokens (PHI4_CONTEXT_TOKENS)"),
    ],
)
async def test_the_probe_says_which_window_prompts_are_fitted_to(
    srv: FakeOpenAIServer, shape: str, said: str
) -> None:
    srv.shape = shape
    async with fitted(srv) as backend:
        assert (await backend.probe()).endswith(said)


async def test_the_history_to_read_follows_the_largest_window_behind_the_backend(
    srv: FakeOpenAIServer,
) -> None:
    from bot.phi4 import Phi4Settings, create_backend
    from bot.phi4.fitting import fitted_window
    from bot.phi4.instrumented import instrument

    srv.shape = "vllm"
    one = Phi4Settings(
        _env_file=None,
        PHI4_BACKEND="openai",
        OPENAI_BASE_URL=srv.base_url,
        PHI4_CONTEXT_TOKENS="8000",
    )
    two = one.model_copy(update={"openai_base_url": f"{srv.base_url},{srv.base_url}"})
    single = instrument(create_backend(one))  # as the bot wraps it, for its metrics
    pool = create_backend(two)
    try:
        assert fitted_window(single) == fitted_window(pool) == 8000
        await converse(single, 1)  # the server states its 1,200 tokens
        assert fitted_window(single) == WINDOW
        await converse(pool, 1)  # one replica learned it, the other still assumes 8,000
        assert fitted_window(pool) == 8000
    finally:
        await single.aclose()
        await pool.aclose()


async def test_a_message_too_long_for_one_backend_of_a_chain_goes_to_a_larger_one(
    srv: FakeOpenAIServer,
) -> None:
    from bot.phi4.chain import FallbackChain

    srv.window = None  # the second server: Phi-4's whole window
    long = Conversation((Turn("user", LONG * 30),))  # ~1,200 estimated tokens, 900 fit
    async with FakeOpenAIServer() as small:
        small.window, small.shape = WINDOW, "vllm"
        async with FallbackChain([fitted(small), fitted(srv)]) as chain:
            assert "".join([c async for c in chain.stream(long)]) == srv.answer
        assert small.chat_requests == []  # refused before any request to it
        async with FallbackChain([fitted(small, window=600), fitted(srv, window=600)]) as chain:
            with pytest.raises(TurnTooLong):
                [c async for c in chain.stream(long)]
