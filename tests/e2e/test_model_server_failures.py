"""What a Telegram user reads when the model server fails the way real servers do.

Through `phi4bot run`, the fake Telegram and the fake OpenAI server replaying llama.cpp's
recorded answers: an empty HTTP 200, a stream without its end, a photo a text-only server
cannot take. Each is one clear sentence of ours, never the server's text, and the next
message is answered.
"""

from __future__ import annotations

from tests.e2e.conftest import StartBot
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_jpeg

EMPTY = "The model server closed the answer without sending anything. Please try again."


async def test_an_empty_answer_from_the_server_is_a_clear_failure_and_the_next_is_answered(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "Here I am."
    bot = await start_bot()
    alice = tg.private_user(42, "Alice")
    model.fail_next("empty")
    tg.send_text(alice.chat, alice, "Are you there?")
    await tg.wait_until(lambda: EMPTY in tg.text_of(42), timeout=20, what="the failure")
    tg.send_text(alice.chat, alice, "And now?")
    await tg.wait_until(
        lambda: tg.messages(42)[-1].text == "Here I am.", timeout=20, what="the next answer"
    )
    assert bot.log_lines("closed the answer without sending anything (a request of")


async def test_an_answer_ended_without_its_end_keeps_its_text_and_says_it_broke_off(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "one two three four five six seven eight"
    await start_bot()
    alice = tg.private_user(42, "Alice")
    model.fail_next("no-end", after=3)
    tg.send_text(alice.chat, alice, "Count, please")
    await tg.wait_until(lambda: "broke off" in tg.text_of(42), timeout=20, what="the notice")
    assert tg.text_of(42).startswith("".join(model.pieces()[:3]).strip())


async def test_a_photo_a_text_only_server_refuses_is_told_once_and_text_goes_on(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "Fine, thanks."
    model.shape, model.text_only = "llama-cpp-python", True
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "How are you?")
    await tg.wait_until(lambda: tg.text_of(42) == "Fine, thanks.", timeout=20)
    tg.send_photo(alice.chat, alice, make_jpeg(64, 48), caption="What is this?")
    await tg.wait_until(
        lambda: "not images" in tg.messages(42)[-1].text, timeout=20, what="the refusal"
    )
    tg.send_text(alice.chat, alice, "Never mind. And you?")
    await tg.wait_until(
        lambda: tg.messages(42)[-1].text == "Fine, thanks.", timeout=20, what="the answer"
    )
    requests = model.chat_requests
    assert len(requests) == 3, "the refusal was not retried"
    shown = " ".join(m.text for m in tg.messages(42))
    assert "concatenate" not in shown, "the server's own words stay out of the chat"
    last = requests[-1].json["messages"]
    assert not [m for m in last if isinstance(m["content"], list)], "the photo stays out"
    assert any("[image]" in m["content"] for m in last), "but the model knows there was one"
