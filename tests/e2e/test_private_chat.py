"""A private chat end to end: the real bot process, the fake Telegram and a fake model."""

from __future__ import annotations

from tests.e2e.conftest import StartBot, last_user_text
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

ANSWER = (
    "Paris is the capital of **France**. It lies on the *Seine*.\n\n"
    "```python\nprint('bonjour')\n```\n\nSee [the map](https://example.org/paris)."
)
RENDERED = (
    "Paris is the capital of France. It lies on the Seine.\n\nprint('bonjour')\n\nSee the map."
)


def entity_types(message) -> set[str]:
    return {e["type"] for e in message.entities}


async def test_an_answer_streams_by_edits_and_ends_as_the_formatted_answer(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = ANSWER
    model.chunk_size = 3
    model.chunk_delay = 0.05  # about 2 s of streaming
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "What is the capital of France?")

    await tg.wait_until(lambda: tg.messages(42), timeout=10, what="a first visible reply")
    first = tg.messages(42)[0]
    assert len(first.text) < len(RENDERED), "the first text must appear before the end"
    await tg.wait_until(lambda: tg.text_of(42) == RENDERED, timeout=15, what="the final text")

    (reply,) = tg.messages(42)
    assert reply.edits >= 2, "the reply grows by edits"
    assert {"bold", "italic", "pre", "text_link"} <= entity_types(reply)
    assert [t for _, t in reply.history][-1] == RENDERED
    assert tg.stats.flood_429 == 0
    body = model.chat_requests[-1].json
    assert body["messages"][0]["role"] == "system"
    assert last_user_text(body) == "What is the capital of France?"


async def test_the_conversation_is_remembered_across_turns_and_restarts(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.reply = lambda body: f"echo: {last_user_text(body)}"
    bot = await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "My name is Alice.")
    await tg.wait_until(lambda: tg.text_of(42) == "echo: My name is Alice.", timeout=10)
    tg.send_text(alice.chat, alice, "I live in Lyon.")
    await tg.wait_until(
        lambda: len(tg.messages(42)) == 2 and tg.messages(42)[1].text == "echo: I live in Lyon.",
        timeout=10,
    )
    assert await bot.stop() == 0

    await start_bot()
    tg.send_text(alice.chat, alice, "What is my name?")
    await tg.wait_until(
        lambda: len(tg.messages(42)) == 3 and tg.messages(42)[2].text.startswith("echo: What"),
        timeout=10,
    )
    history = [
        (m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]["text"])
        for m in model.chat_requests[-1].json["messages"][1:]
    ]
    assert history == [
        ("user", "My name is Alice."),
        ("assistant", "echo: My name is Alice."),
        ("user", "I live in Lyon."),
        ("assistant", "echo: I live in Lyon."),
        ("user", "What is my name?"),
    ]


async def test_new_starts_a_fresh_conversation(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.reply = lambda body: f"echo: {last_user_text(body)}"
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "remember 7")
    await tg.wait_until(lambda: tg.text_of(42) == "echo: remember 7", timeout=10)
    tg.send_text(alice.chat, alice, "/new")
    await tg.wait_until(lambda: len(tg.messages(42)) == 2, timeout=10)
    assert "New conversation" in tg.messages(42)[1].text
    tg.send_text(alice.chat, alice, "what number?")
    await tg.wait_until(
        lambda: len(tg.messages(42)) == 3 and "what number" in tg.messages(42)[2].text, timeout=10
    )
    messages = model.chat_requests[-1].json["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]


async def test_stop_ends_the_answer_and_keeps_what_was_shown(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "one two three four five six seven eight nine ten"
    model.chunk_size = 4
    model.pause_after = 3  # hold the stream until the test resumes it
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "count")
    await tg.wait_until(
        lambda: tg.messages(42) and "one two" in tg.messages(42)[0].text, timeout=10
    )
    tg.send_text(alice.chat, alice, "/stop")
    await tg.wait_until(lambda: "Stopped" in tg.text_of(42), timeout=10)
    await model.chat_requests[-1].disconnected.wait()
    assert tg.messages(42)[0].text.startswith("one two thre")

    model.pause_after = None
    model.reply = lambda body: "ok"
    tg.send_text(alice.chat, alice, "go on")
    await tg.wait_until(lambda: tg.messages(42)[-1].text == "ok", timeout=10)
    stored = model.chat_requests[-1].json["messages"]
    assert stored[-2] == {"role": "assistant", "content": "one two thre"}


async def test_a_backend_failure_is_a_reply_and_retry_answers_again(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "Recovered answer."
    model.fail_next("503", times=2)  # the client retries once
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "hello?")
    await tg.wait_until(lambda: "out of quota or overloaded" in tg.text_of(42), timeout=15)
    tg.send_text(alice.chat, alice, "/retry")
    await tg.wait_until(lambda: tg.messages(42)[-1].text == "Recovered answer.", timeout=10)
    messages = model.chat_requests[-1].json["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert last_user_text(model.chat_requests[-1].json) == "hello?"


async def test_a_message_sent_during_an_answer_waits_its_turn(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.reply = lambda body: f"answer to {last_user_text(body)}"
    model.chunk_size = 2
    model.chunk_delay = 0.05
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "first")
    await tg.wait_until(lambda: tg.messages(42), timeout=10)
    tg.send_text(alice.chat, alice, "second")
    await tg.wait_until(
        lambda: [m.text for m in tg.messages(42)] == ["answer to first", "answer to second"],
        timeout=15,
    )
    second = model.chat_requests[-1].json["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]


async def test_twenty_chats_at_once_finish_in_about_the_time_of_one(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.reply = lambda body: f"Dear {last_user_text(body)}, " + "la " * 30
    model.chunk_size = 6
    model.chunk_delay = 0.05
    await start_bot()
    users = [tg.private_user(100 + n, f"User{n}") for n in range(20)]
    for user in users:
        tg.send_text(user.chat, user, user.first_name)

    def all_done() -> bool:
        return all(tg.text_of(u.id) == f"Dear {u.first_name}, " + "la " * 29 + "la" for u in users)

    await tg.wait_until(all_done, timeout=30, what="all twenty answers")
    # Side by side, not one after another: most answers were streaming at the same time.
    assert model.most_streaming_at_once >= 15, model.most_streaming_at_once
    assert tg.stats.flood_429 == 0


async def test_an_answer_longer_than_one_message_continues_in_new_messages(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    paragraphs = [f"Paragraph {n}: " + "word " * 150 for n in range(12)]
    model.answer = "\n\n".join(p.strip() for p in paragraphs)  # about 9 kB
    model.chunk_size = 200
    model.chunk_delay = 0.01
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "write a lot")

    def finished() -> bool:
        texts = [m.text for m in tg.messages(42)]
        return len(texts) >= 3 and "\n\n".join(texts) == model.answer

    await tg.wait_until(finished, timeout=20, what="the whole answer over several messages")
    assert all(len(m.text.encode("utf-16-le")) // 2 <= 4096 for m in tg.messages(42))
    assert tg.stats.flood_429 == 0
