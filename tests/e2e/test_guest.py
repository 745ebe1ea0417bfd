"""Guest mode end to end: the bot summoned in chats it is not a member of answers there,
streamed into its one guest message."""

from __future__ import annotations

from tests.e2e.conftest import BOT_USERNAME, StartBot, last_user_text
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

MENTION = f"@{BOT_USERNAME}"


async def test_a_summon_is_answered_at_once_and_streamed_into_its_guest_message(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "The **capital** of Peru is Lima. " * 6  # 50 chunks in 7.5 s:
    model.chunk_delay = 0.15  # a group-paced message shows it at 0, 3 and 6 s, then whole
    await start_bot()
    friends = tg.guest_chat()
    anna, ben = tg.private_user(1, "Anna"), tg.private_user(2, "Ben")
    tg.send_text(friends, ben, "where are we flying?")
    summon = tg.summon(friends, anna, f"{MENTION} capital of Peru?")
    await tg.wait_until(lambda: tg.guest_answer(summon) is not None, timeout=10)
    await tg.wait_until(
        lambda: (a := tg.guest_answer(summon)) is not None and a.buttons == ["🔄 Regenerate"],
        timeout=20,
    )
    answer = tg.guest_answer(summon)
    assert answer is not None
    assert answer.text == model.answer.strip().replace("**", "")
    assert any(e["type"] == "bold" for e in answer.entities)
    shown = [text for _, text in answer.history]
    assert shown[0] == "…" or answer.text.startswith(shown[0]), shown
    partial = [text for text in shown[1:-1] if text != "…"]
    assert partial and all(answer.text.startswith(text) for text in partial), shown
    gaps = [b - a for (a, _), (b, _) in zip(answer.history, answer.history[1:], strict=False)]
    assert min(gaps) >= 3.0, "a guest message is paced like a group message"
    assert [m.text for m in tg.messages(friends.id)] == [answer.text]  # one message, nothing else
    assert tg.stats.flood_429 == 0
    assert tg.stats.requests["sendMessage"] == 0 and tg.stats.requests["sendChatAction"] == 0
    assert len(model.chat_requests) == 1
    assert last_user_text(model.chat_requests[0].json) == "capital of Peru?"


async def test_a_stranger_is_refused_with_one_guest_answer_and_no_model_call(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    await start_bot(PHI4BOT_ALLOWED_USERS="1")
    friends = tg.guest_chat("group")
    stranger = tg.private_user(66, "Eve")
    summon = tg.summon(friends, stranger, f"{MENTION} hello?")
    await tg.wait_until(lambda: tg.guest_answer(summon) is not None, timeout=10)
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    answer = tg.guest_answer(summon)
    assert answer is not None and answer.text == "Sorry, this bot is private."
    assert answer.keyboard is None
    assert model.chat_requests == []
    allowed = tg.summon(friends, tg.private_user(1, "Anna"), f"{MENTION} hello?")
    await tg.wait_until(
        lambda: (a := tg.guest_answer(allowed)) is not None and a.text == model.answer, timeout=10
    )
