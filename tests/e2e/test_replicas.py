"""Several model servers end to end: replicas, failover and the Space → OpenAI fallback chain."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from bot.phi4.errors import ConnectionRefused
from tests.e2e.conftest import StartBot, last_user_text
from tests.e2e.test_cli import run_cli
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.space import FakeSpace
from tests.fakes.telegram import FakeTelegram

BROKE_OFF = "The connection to the model broke off mid-answer."


def answer_for(question: str) -> str:
    return f"Answer to {question}: " + "lorem ipsum " * 4


def free_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.fixture
async def replicas() -> AsyncIterator[list[FakeOpenAIServer]]:
    async with AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(FakeOpenAIServer()) for _ in range(3)]
        for srv in servers:
            srv.reply = lambda body: answer_for(last_user_text(body))
        yield servers


def urls(servers: list[FakeOpenAIServer]) -> str:
    return ",".join(s.base_url for s in servers)


def ask_in_chats(tg: FakeTelegram, first_id: int, count: int, prefix: str = "q") -> list[int]:
    ids = list(range(first_id, first_id + count))
    for chat_id in ids:
        user = tg.private_user(chat_id, f"User{chat_id}")
        tg.send_text(user.chat, user, f"{prefix}{chat_id}")
    return ids


async def test_sixty_answers_spread_evenly_over_three_replicas(
    tg: FakeTelegram, replicas: list[FakeOpenAIServer], start_bot: StartBot
) -> None:
    await start_bot(OPENAI_BASE_URL=urls(replicas))
    ids = ask_in_chats(tg, 1000, 60)
    await tg.wait_until(
        lambda: all(tg.text_of(i) == answer_for(f"q{i}").strip() for i in ids),
        timeout=90,
        what="60 answers",
    )
    counts = [len(s.chat_requests) for s in replicas]
    assert sum(counts) == 60
    assert all(16 <= n <= 24 for n in counts), counts


async def test_a_replica_killed_mid_run_costs_only_the_answers_it_was_streaming(
    tg: FakeTelegram, replicas: list[FakeOpenAIServer], start_bot: StartBot
) -> None:
    for srv in replicas:
        srv.chunk_delay = 0.05  # each answer streams for about a second
    victim = replicas[1]
    bot = await start_bot(OPENAI_BASE_URL=urls(replicas), PHI4_REPLICA_BACKOFF="3")
    ids = ask_in_chats(tg, 2000, 24)
    await tg.wait_until(lambda: any(r.chunks_sent for r in victim.chat_requests), timeout=20)
    await victim.kill()

    def finished(chat_id: int) -> bool:
        text = tg.text_of(chat_id)
        return text == answer_for(f"q{chat_id}").strip() or BROKE_OFF in text

    await tg.wait_until(lambda: all(finished(i) for i in ids), timeout=60, what="24 answers")
    cut = [i for i in ids if BROKE_OFF in tg.text_of(i)]
    assert 1 <= len(cut) <= 8
    for chat_id in ids:
        (reply,) = tg.messages(chat_id)  # one message each: nothing restarted or duplicated
        if chat_id in cut:
            shown = reply.text.split(BROKE_OFF)[0].strip()
            assert answer_for(f"q{chat_id}").startswith(shown) and shown

    # Back at once on its old port, but only its probe may bring it back into the rotation.
    await victim.start()
    victim.requests.clear()
    more = ask_in_chats(tg, 3000, 6)
    await tg.wait_until(
        lambda: all(tg.text_of(i) == answer_for(f"q{i}").strip() for i in more), timeout=30
    )
    await tg.wait_until(lambda: "brought back" in bot.log(), timeout=20, what="the probe")
    paths = [r.path for r in victim.requests]
    assert paths and paths[0] == "/v1/models", paths
    later = ask_in_chats(tg, 4000, 6)
    await tg.wait_until(
        lambda: all(tg.text_of(i) == answer_for(f"q{i}").strip() for i in later), timeout=30
    )
    assert victim.chat_requests, "the replica answers again once its probe succeeded"
    assert "taken out" in bot.log()


async def test_a_replica_answering_503_is_retried_elsewhere_before_the_first_chunk(
    tg: FakeTelegram, replicas: list[FakeOpenAIServer], start_bot: StartBot
) -> None:
    replicas[0].fail_next("503")  # the first replica is asked first
    await start_bot(OPENAI_BASE_URL=urls(replicas))
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "hello")
    await tg.wait_until(lambda: tg.text_of(42) == answer_for("hello").strip(), timeout=15)
    (reply,) = tg.messages(42)
    assert all(answer_for("hello").strip().startswith(t) for _, t in reply.history)
    assert [len(s.chat_requests) for s in replicas] == [1, 1, 0]


async def test_a_space_out_of_gpu_quota_hands_the_same_turn_to_the_openai_server(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    async with FakeSpace() as space:
        space.fail_next("quota")
        model.answer = "Answered by the OpenAI server."
        await start_bot(
            PHI4_BACKEND="space,openai", PHI4_SPACE_URL=space.url, HF_ENDPOINT=space.url
        )
        alice = tg.private_user(42, "Alice")
        tg.send_text(alice.chat, alice, "hello")
        await tg.wait_until(lambda: tg.text_of(42) == model.answer, timeout=15)
        assert len(space.requests) == 1
        assert last_user_text(model.chat_requests[-1].json) == "hello"
        assert len(tg.messages(42)) == 1


async def test_with_every_replica_down_each_turn_gets_one_clear_error(
    tg: FakeTelegram, start_bot: StartBot
) -> None:
    await start_bot(OPENAI_BASE_URL=f"{free_url()},{free_url()}", PHI4_REPLICA_BACKOFF="60")
    alice, bob = tg.private_user(42, "Alice"), tg.private_user(43, "Bob")
    tg.send_text(alice.chat, alice, "first")
    await tg.wait_until(lambda: tg.messages(42), timeout=15)
    tg.send_text(bob.chat, bob, "second")
    tg.send_text(alice.chat, alice, "third")
    await tg.wait_until(lambda: len(tg.messages(42)) == 2 and tg.messages(43), timeout=15)
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    for message in [*tg.messages(42), *tg.messages(43)]:
        # Nothing listens at either local address: the sentence for a server not started.
        assert message.text == ConnectionRefused.user_message, message.text
    assert len(tg.messages(42)) == 2 and len(tg.messages(43)) == 1


async def test_check_lists_every_replica_and_passes_while_one_answers(tmp_path: Path) -> None:
    dead = free_url()
    async with FakeOpenAIServer() as alive:
        code, out, _ = await run_cli(
            tmp_path,
            "check",
            PHI4_BACKEND="openai",
            OPENAI_BASE_URL=f"{alive.base_url},{dead}",
            PHI4_CONNECT_TIMEOUT="2",
        )
    assert code == 0, out
    assert f"openai {alive.base_url}: answers" in out
    assert f"openai {dead}: refuses" in out
    assert "OK: 1 of 2 can answer." in out
