"""Long conversations over a small window, through `phi4bot run` and the fake Telegram.

The fake model server has a 1,200-token window counted by a real tokenizer, shaped as vLLM
(states it, refuses with 400) or as llama-cpp-python (states nothing, answers an over-long
streamed prompt with an empty 200): every one of 30 long turns must be answered.
"""

from __future__ import annotations

import re
from functools import partial

import pytest

from tests.e2e.conftest import StartBot
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

WINDOW = 1200
QUESTION = (
    "Tell me more about the history of the lighthouse on the northern pier, the keepers "
    "who trimmed its wicks every four hours, and the boats that came home early in winter. "
) * 3
ANSWER = "The keepers lived in the cottage beside it, and the boats came home by its light."


@pytest.mark.parametrize("shape", ["vllm", "llama-cpp-python"])
async def test_thirty_long_turns_over_a_small_window_are_all_answered(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, shape: str
) -> None:
    model.window, model.shape = WINDOW, shape
    model.answer, model.chunk_size, model.chunk_delay = ANSWER, 40, 0.0
    bot = await start_bot()
    alice = tg.private_user(42, "Alice")

    def answered(count: int) -> bool:
        replies = tg.messages(42)
        return len(replies) == count and replies[-1].text == ANSWER

    for n in range(30):
        tg.send_text(alice.chat, alice, f"({n}) {QUESTION}")
        await tg.wait_until(partial(answered, n + 1), timeout=15, what=f"the answer to turn {n}")
    streamed = [r for r in model.chat_requests if r.json["stream"]]
    assert len(streamed) <= 31  # at most one request refused and asked again
    counted = zip(model.prompt_tokens, model.chat_requests, strict=True)
    refused = [tokens for tokens, r in counted if r.json["stream"] and tokens >= WINDOW]
    assert len(refused) == (0 if shape == "vllm" else 1)  # vLLM states its window up front
    kept = [
        tuple(map(int, found.groups()))
        for line in bot.log_lines("context: ")
        if (found := re.search(r"context: (\d+) of (\d+) turns kept", line))
    ]
    assert len(kept) >= 30
    turns_kept, turns_read = kept[-1]
    assert turns_read < 59  # only what the learned window could hold is read from the store
    assert 3 <= turns_kept <= turns_read  # and of that, the newest turns that fit are sent
    assert "window 1200" in bot.log_lines("context: ")[-1]


async def test_an_empty_answer_is_a_clear_failure_and_the_next_message_is_answered(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.window, model.shape, model.answer = WINDOW, "llama-cpp-python", ANSWER
    model.fail_next("empty")
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "Hello?")
    await tg.wait_until(lambda: tg.messages(42), timeout=15, what="a reply")
    await tg.wait_until(
        lambda: "without sending anything" in tg.messages(42)[0].text,
        timeout=15,
        what="the failure sentence",
    )
    tg.send_text(alice.chat, alice, "Hello again?")
    await tg.wait_until(
        lambda: len(tg.messages(42)) == 2 and tg.messages(42)[1].text == ANSWER,
        timeout=15,
        what="the next answer",
    )


async def test_an_answer_cut_at_the_length_limit_is_kept_and_continued(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer, model.chunk_size = ANSWER, 10
    model.fail_next("length", after=3)  # the server's max_tokens: 30 characters, then "length"
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "Tell me about the keepers.")

    def cut_with_continue() -> bool:
        replies = tg.messages(42)
        return bool(replies) and "▶️ Continue" in replies[0].buttons

    await tg.wait_until(cut_with_continue, timeout=15, what="the Continue button")
    (cut,) = tg.messages(42)
    assert cut.text.startswith(ANSWER[:30])
    assert "cut at the model's length limit" in cut.text
    assert cut.buttons == ["🔄 Regenerate", "▶️ Continue"]

    model.answer = "and the boats came home by its light."
    tg.press_button(alice.chat, alice, cut.message_id, "▶️ Continue")
    await tg.wait_until(
        lambda: len(tg.messages(42)) == 2 and tg.messages(42)[1].text == model.answer,
        timeout=15,
        what="the rest, as the next message",
    )
    body = model.chat_requests[-1].json
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert body["messages"][2]["content"] == ANSWER[:30]  # the cut answer is kept in history
    assert "Continue exactly where" in str(body["messages"][3]["content"])
    await tg.wait_until(lambda: tg.messages(42)[0].buttons == [], timeout=10)

    model.answer = "More about the cottage."
    tg.send_text(alice.chat, alice, "/continue")
    await tg.wait_until(
        lambda: len(tg.messages(42)) == 3 and tg.messages(42)[2].text == model.answer,
        timeout=15,
        what="the /continue answer",
    )
    assert "Continue exactly where" in str(model.chat_requests[-1].json["messages"][-1])
