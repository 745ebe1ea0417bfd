"""ReplicaPool over real HTTP against three fake OpenAI-compatible servers."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.phi4 import Phi4Settings, create_backend
from bot.phi4.conversation import Conversation, Turn
from bot.phi4.errors import (
    AccessDenied,
    BackendUnavailable,
    BadAnswer,
    ConnectionRefused,
    Phi4Error,
)
from bot.phi4.failover import http_status, server_is_sick
from bot.phi4.fitting import WindowFitting
from bot.phi4.replicas import ReplicaPool
from tests.fakes.openai_server import FakeOpenAIServer

ASK = Conversation((Turn("user", "Hi"),))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pool_of(*urls: str, **values: Any) -> ReplicaPool:
    options = {"PHI4_REPLICA_BACKOFF": "0.05", "PHI4_CONNECT_TIMEOUT": "2"} | values
    settings = Phi4Settings(
        _env_file=None, PHI4_BACKEND="openai", OPENAI_BASE_URL=",".join(urls), **options
    )
    backend = create_backend(settings)
    assert isinstance(backend, ReplicaPool)
    return backend


@pytest.fixture
async def servers() -> AsyncIterator[list[FakeOpenAIServer]]:
    async with FakeOpenAIServer() as a, FakeOpenAIServer() as b, FakeOpenAIServer() as c:
        for n, srv in enumerate((a, b, c)):
            srv.answer = f"answer from server {n}"
        yield [a, b, c]


async def collect(pool: ReplicaPool, conversation: Conversation = ASK) -> str:
    return "".join([chunk async for chunk in pool.stream(conversation)])


def chats(servers: list[FakeOpenAIServer]) -> list[int]:
    return [len(s.chat_requests) for s in servers]


async def test_one_url_is_the_plain_backend_as_before() -> None:
    settings = Phi4Settings(_env_file=None, PHI4_BACKEND="openai")
    backend = create_backend(settings)
    assert isinstance(backend, WindowFitting)  # the server itself, fitted to its window
    assert type(backend.inner).__name__ == "OpenAIBackend"


async def test_sixty_concurrent_answers_spread_evenly(servers: list[FakeOpenAIServer]) -> None:
    for srv in servers:
        srv.chunk_delay = 0.01
    async with pool_of(*(s.base_url for s in servers)) as pool:
        answers = await asyncio.gather(*(collect(pool) for _ in range(60)))
    assert all(a.startswith("answer from server") for a in answers)
    assert sum(chats(servers)) == 60
    assert all(16 <= n <= 24 for n in chats(servers)), chats(servers)


async def test_answers_one_after_another_go_round_robin(servers: list[FakeOpenAIServer]) -> None:
    async with pool_of(*(s.base_url for s in servers)) as pool:
        answers = [await collect(pool) for _ in range(6)]
    assert answers == [f"answer from server {n % 3}" for n in range(6)]


async def test_the_least_busy_replica_gets_the_next_answer(
    servers: list[FakeOpenAIServer],
) -> None:
    servers[0].pause_after = 1
    async with pool_of(*(s.base_url for s in servers)) as pool:
        held = pool.stream(ASK)
        assert await anext(held) == "answ"
        assert [s.in_flight for s in pool.status()] == [1, 0, 0]
        assert await collect(pool) == "answer from server 1"
        assert await collect(pool) == "answer from server 2"
        assert await collect(pool) == "answer from server 1"  # 0 is still busy
        servers[0].resume()
        assert "".join([c async for c in held]) == "er from server 0"


async def test_a_replica_answering_503_is_retried_elsewhere_before_the_first_chunk(
    servers: list[FakeOpenAIServer],
) -> None:
    servers[0].fail_next("503")
    # out long enough to be seen out: 0.05 s may pass before the status is read
    async with pool_of(*(s.base_url for s in servers), PHI4_REPLICA_BACKOFF="30") as pool:
        assert await collect(pool) == "answer from server 1"
        state = pool.status()
        assert not state[0].healthy and state[0].failed == 1
        assert "503" in (state[0].last_error or "")
    assert chats(servers) == [1, 1, 0]


async def test_a_failure_after_text_ends_the_answer_and_is_not_retried(
    servers: list[FakeOpenAIServer],
) -> None:
    servers[0].fail_next("drop", after=2)
    async with pool_of(*(s.base_url for s in servers)) as pool:
        shown: list[str] = []
        with pytest.raises(BackendUnavailable):
            async for chunk in pool.stream(ASK):
                shown.append(chunk)
        assert "".join(shown) == "answer f"
        assert not pool.status()[0].healthy
    assert chats(servers) == [1, 0, 0]


async def test_a_refused_request_is_not_retried_and_rests_no_replica(
    servers: list[FakeOpenAIServer],
) -> None:
    servers[0].fail_next("status", status=400, message="Invalid value for temperature")
    async with pool_of(*(s.base_url for s in servers)) as pool:
        with pytest.raises(BadAnswer):
            await collect(pool)
        assert all(s.healthy for s in pool.status())
    assert chats(servers) == [1, 0, 0]


async def test_a_killed_replica_is_asked_again_only_after_its_probe_answers(
    servers: list[FakeOpenAIServer],
) -> None:
    for srv in servers:
        srv.chunk_delay, srv.chunk_size = 0.02, 1
    victim = servers[1]
    async with pool_of(*(s.base_url for s in servers), PHI4_REPLICA_BACKOFF="1") as pool:
        running = [asyncio.create_task(collect(pool)) for _ in range(9)]
        started = lambda: any(r.chunks_sent for r in victim.chat_requests)  # noqa: E731
        await asyncio.wait_for(_until(started), 5)
        await victim.kill()
        results = await asyncio.gather(*running, return_exceptions=True)
        cut = [r for r in results if isinstance(r, Phi4Error)]
        # Answers the victim had begun end with an error; one it had not is answered elsewhere.
        assert 1 <= len(cut) <= 3 and all(isinstance(r, BackendUnavailable) for r in cut)
        done = [r for r in results if isinstance(r, str)]
        assert len(done) + len(cut) == 9
        assert all(r in (f"answer from server {n}" for n in (0, 2)) for r in done)
        assert not pool.status()[1].healthy

        for srv in servers:
            srv.chunk_delay = 0.0
        await victim.start()  # back at once, but only a probe may find that out
        victim.requests.clear()
        assert all(a != "answer from server 1" for a in [await collect(pool) for _ in range(6)])
        await asyncio.wait_for(_until(lambda: pool.status()[1].healthy), 5)
        assert [r.path for r in victim.requests] == ["/v1/models"]
        answers = [await collect(pool) for _ in range(3)]
        assert "answer from server 1" in answers


async def test_every_replica_down_fails_at_once_with_one_clear_error() -> None:
    urls = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(3)]
    async with pool_of(*urls, PHI4_REPLICA_BACKOFF="30") as pool:
        with pytest.raises(BackendUnavailable) as first:
            await collect(pool)
        assert isinstance(first.value, ConnectionRefused)  # nothing listens on this machine
        assert not any(s.healthy for s in pool.status())
        with pytest.raises(ConnectionRefused) as second:
            await asyncio.wait_for(collect(pool), 0.5)  # nobody is asked: at once
        assert second.value.user_message == first.value.user_message


async def test_the_back_off_grows_with_each_failed_probe_and_is_capped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    caplog.set_level(logging.INFO, logger="bot.phi4.replicas")
    async with FakeOpenAIServer() as healthy:
        pool = pool_of(url, healthy.base_url, PHI4_REPLICA_BACKOFF_MAX="0.2")
        async with pool:
            assert await collect(pool) == healthy.answer
            await asyncio.wait_for(_until(lambda: pool.status()[0].times_out >= 5), 5)
    delays = [
        r.args[-1]  # type: ignore[index]
        for r in caplog.records
        if "next probe in" in r.getMessage()
    ]
    assert delays[:4] == [0.1, 0.2, 0.2, 0.2]
    taken_out = [r.getMessage() for r in caplog.records if "taken out" in r.getMessage()]
    assert len(taken_out) == 1 and url in taken_out[0]


async def test_a_replica_brought_back_is_logged_without_its_credentials(
    caplog: pytest.LogCaptureFixture, servers: list[FakeOpenAIServer]
) -> None:
    caplog.set_level(logging.INFO, logger="bot.phi4.replicas")
    servers[0].fail_next("429")
    secret_url = servers[0].base_url.replace("http://", "http://user:pa55@") + "?key=k3y"
    async with pool_of(secret_url, servers[1].base_url) as pool:
        await collect(pool)
        await asyncio.wait_for(_until(lambda: pool.status()[0].healthy), 5)
    text = caplog.text
    assert "taken out" in text and "brought back" in text
    assert "pa55" not in text and "k3y" not in text


async def test_stopping_an_answer_closes_the_stream_on_the_replica_serving_it(
    servers: list[FakeOpenAIServer],
) -> None:
    servers[0].pause_after = 1
    async with pool_of(*(s.base_url for s in servers)) as pool:
        stream = pool.stream(ASK)
        await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        recorded = servers[0].chat_requests[-1]
        await asyncio.wait_for(recorded.disconnected.wait(), 5)
        assert pool.status()[0].in_flight == 0 and pool.status()[0].healthy


def test_which_failures_say_the_server_is_sick() -> None:
    assert server_is_sick(BackendUnavailable("cannot connect"))
    assert server_is_sick(BackendUnavailable("503", status=503))
    assert server_is_sick(BackendUnavailable("429", status=429))
    assert not server_is_sick(Phi4Error("context too long", status=400))
    assert not server_is_sick(BadAnswer("garbled"))

    class Cause(Exception):
        status_code = 502

    try:
        try:
            raise Cause()
        except Cause as cause:
            raise Phi4Error("bad gateway") from cause
    except Phi4Error as exc:
        assert http_status(exc) == 502


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def test_with_every_replica_out_the_turn_reads_why_they_failed(
    servers: list[FakeOpenAIServer],
) -> None:
    for srv in servers:
        srv.api_key = "the-right-key"
    urls = [s.base_url for s in servers]
    async with pool_of(*urls, OPENAI_API_KEY="wrong", PHI4_REPLICA_BACKOFF="30") as pool:
        for _ in range(2):
            with pytest.raises(AccessDenied) as failure:
                await collect(pool)
            assert "401" in str(failure.value)
    assert chats(servers) == [1, 1, 1], "the second turn asked nobody"
