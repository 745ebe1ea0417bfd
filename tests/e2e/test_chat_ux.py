"""What people expect of a chat bot end to end: formatting past Telegram's entity limit,
commands done once, buttons under answers, their language, edits and quoted replies."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.e2e.conftest import StartBot, last_user_text
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_jpeg


async def test_an_answer_with_300_entities_is_fully_formatted_over_several_messages(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = " ".join(f"**w{n}**" for n in range(300))
    model.chunk_size = 200
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "bold words please")

    def all_bold() -> bool:
        return sum(len(m.entities) for m in tg.messages(42)) == 300

    await tg.wait_until(all_bold, timeout=15, what="all 300 entities shown")
    messages = tg.messages(42)
    assert len(messages) == 3
    assert all(len(m.entities) <= 100 for m in messages)
    assert " ".join(m.text for m in messages) == " ".join(f"w{n}" for n in range(300))


async def test_a_new_command_delivered_again_after_a_crash_is_carried_out_once(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, tmp_path: Path
) -> None:
    model.answer = "hello"
    bot = await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "hi")
    await tg.wait_until(lambda: tg.text_of(42) == "hello", timeout=10)
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    # The poll that would confirm /new hangs, so Telegram delivers it again after the crash.
    tg.delay_next(1, 120, method="getUpdates")
    tg.send_text(alice.chat, alice, "/new")
    await tg.wait_until(lambda: "New conversation" in tg.text_of(42), timeout=10)
    await bot.kill()
    assert tg.pending_updates == 1

    polls = tg.stats.requests["getUpdates"]
    await start_bot()
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=15)
    await tg.wait_until(lambda: tg.stats.requests["getUpdates"] >= polls + 2, timeout=15)
    assert sum("New conversation" in m.text for m in tg.messages(42)) == 1
    with sqlite3.connect(tmp_path / "bot.db") as db:
        (conversations,) = db.execute(
            "SELECT count(*) FROM conversations WHERE chat_id = 42"
        ).fetchone()
    assert conversations == 2, "one conversation before /new and one after it"


STOP = "⏹ Stop"
REGENERATE = "🔄 Regenerate"


def numbered_answers(model: FakeOpenAIServer) -> None:
    """Each request gets "answer N", N counting the requests so far."""
    model.reply = lambda body: f"answer {len(model.chat_requests)}"


async def test_the_stop_button_under_an_answer_being_written_stops_it(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "word " * 300
    model.chunk_size = 5
    model.chunk_delay = 0.05  # about 15 s unless stopped
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "talk to me")
    await tg.wait_until(
        lambda: tg.messages(42) and tg.messages(42)[-1].buttons == [STOP],
        timeout=10,
        what="a Stop button under the answer",
    )
    query = tg.press_button(alice.chat, alice, tg.messages(42)[-1].message_id, STOP)
    await tg.wait_until(lambda: tg.text_of(42).endswith("Stopped."), timeout=10)
    await tg.wait_until(lambda: tg.press(query).answered, timeout=5)
    (reply,) = tg.messages(42)
    assert reply.buttons == [REGENERATE]
    assert len(reply.text) < len("word " * 300)
    assert tg.press(query).text is None
    assert tg.stats.flood_429 == 0


async def test_regenerate_answers_again_in_place_and_only_the_newest_answer_offers_it(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    numbered_answers(model)
    await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "a question")
    await tg.wait_until(
        lambda: [(m.text, m.buttons) for m in tg.messages(42)] == [("answer 1", [REGENERATE])],
        timeout=10,
    )
    (first,) = tg.messages(42)
    query = tg.press_button(alice.chat, alice, first.message_id, REGENERATE)
    await tg.wait_until(lambda: first.text == "answer 2" and first.buttons == [REGENERATE])
    assert tg.press(query).answered
    assert len(tg.messages(42)) == 1, "the answer is written again in its own message"
    history = model.chat_requests[-1].json["messages"]
    assert [m["role"] for m in history] == ["system", "user"], "the old answer is replaced"

    tg.send_text(alice.chat, alice, "another one")
    await tg.wait_until(
        lambda: (
            [(m.text, m.buttons) for m in tg.messages(42)]
            == [("answer 2", []), ("answer 3", [REGENERATE])]
        ),
        timeout=10,
        what="Regenerate only under the newest answer",
    )
    assert [m["role"] for m in model.chat_requests[-1].json["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]
    assert tg.unanswered_presses == []
    assert tg.stats.flood_429 == 0


async def test_in_a_group_only_the_asker_or_an_admin_may_press_the_buttons(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    numbered_answers(model)
    await start_bot()
    group = tg.group(title="Team")
    anna = tg.private_user(1, "Anna")
    ben = tg.private_user(2, "Ben")
    boss = tg.private_user(3, "Boss")
    tg.set_member(group, boss, "administrator")
    tg.send_text(group, anna, "@phi4_test_bot hello")
    await tg.wait_until(lambda: tg.messages(group.id) and tg.messages(group.id)[-1].buttons)
    await tg.wait_until(lambda: tg.messages(group.id)[-1].buttons == [REGENERATE], timeout=10)
    answer = tg.messages(group.id)[-1]

    refused = tg.press_button(group, ben, answer.message_id, REGENERATE)
    await tg.wait_until(lambda: tg.press(refused).answered, timeout=5)
    assert tg.press(refused).text == "Only the person who asked (or a group admin) can do that."
    assert answer.text == "answer 1" and len(model.chat_requests) == 1

    allowed = tg.press_button(group, boss, answer.message_id, REGENERATE)
    await tg.wait_until(lambda: answer.text == "answer 2", timeout=10)
    assert tg.press(allowed).answered and tg.press(allowed).text is None


async def test_an_edited_last_question_is_answered_again_once_in_the_same_message(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.reply = lambda body: f"about {last_user_text(body)}"
    await start_bot()
    alice = tg.private_user(42, "Alice")
    first = tg.send_text(alice.chat, alice, "cats")
    await tg.wait_until(lambda: tg.text_of(42) == "about cats", timeout=10)
    question = tg.send_text(alice.chat, alice, "dgos")
    await tg.wait_until(lambda: tg.text_of(42) == "about cats\nabout dgos", timeout=10)
    answer = tg.messages(42)[-1]

    tg.edit_text(alice.chat, question, "dogs")
    await tg.wait_until(lambda: answer.text == "about dogs", timeout=10)
    await tg.wait_until(lambda: answer.buttons == [REGENERATE], timeout=10)
    assert len(model.chat_requests) == 3
    history = model.chat_requests[-1].json["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    assert last_user_text(model.chat_requests[-1].json) == "dogs"

    tg.edit_text(alice.chat, first, "kittens")  # an older message: stored, not answered
    tg.send_text(alice.chat, alice, "and birds?")
    await tg.wait_until(lambda: tg.messages(42)[-1].text == "about and birds?", timeout=10)
    assert len(model.chat_requests) == 4
    first_question = model.chat_requests[-1].json["messages"][1]
    assert last_user_text({"messages": [first_question]}) == "kittens"
    assert len(tg.messages(42)) == 3


async def test_an_edit_of_a_group_message_the_bot_ignored_stays_ignored(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "hi"
    await start_bot()
    group = tg.group(title="Team")
    anna = tg.private_user(1, "Anna")
    chatter = tg.send_text(group, anna, "just chatting")
    tg.send_text(group, anna, "@phi4_test_bot hello")
    await tg.wait_until(lambda: tg.text_of(group.id) == "hi", timeout=10)
    tg.edit_text(group, chatter, "@phi4_test_bot now I mention you")
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    tg.send_text(group, anna, "@phi4_test_bot and again")
    await tg.wait_until(lambda: len(tg.messages(group.id)) == 2, timeout=10)
    assert len(model.chat_requests) == 2


def image_parts(body: dict[str, object]) -> list[object]:
    """The image parts of the newest user message of an OpenAI request."""
    messages = body["messages"]
    assert isinstance(messages, list)
    content = next(m for m in reversed(messages) if m["role"] == "user")["content"]
    return [] if isinstance(content, str) else [p for p in content if p["type"] == "image_url"]


async def test_a_quoted_reply_in_a_private_chat_gives_the_model_that_message_as_context(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    numbered_answers(model)
    await start_bot()
    alice = tg.private_user(42, "Alice")
    photo = tg.send_photo(alice.chat, alice, make_jpeg(), caption="my garden")
    await tg.wait_until(lambda: tg.text_of(42) == "answer 1", timeout=10)
    tg.send_text(alice.chat, alice, "something else")
    await tg.wait_until(lambda: len(tg.messages(42)) == 2, timeout=10)
    first_answer = tg.messages(42)[0]

    tg.send_text(alice.chat, alice, "why?", reply_to=first_answer.message_id)
    await tg.wait_until(lambda: len(tg.messages(42)) == 3, timeout=10)
    assert last_user_text(model.chat_requests[-1].json) == (
        'Replying to your earlier message: "answer 1"\n\nwhy?'
    )

    tg.send_text(alice.chat, alice, "which flowers?", reply_to=photo)
    await tg.wait_until(lambda: len(tg.messages(42)) == 4, timeout=10)
    body = model.chat_requests[-1].json
    assert last_user_text(body) == 'Replying to my earlier message: "my garden"\n\nwhich flowers?'
    assert len(image_parts(body)) == 1, "the photo replied to is sent along again"


async def test_a_russian_speaker_reads_help_errors_and_buttons_in_russian(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "Ответ."
    model.fail_next("503", times=2)  # the client retries once
    await start_bot()
    ivan = tg.private_user(77, "Иван", language_code="ru")
    alice = tg.private_user(42, "Alice", language_code="en")
    tg.send_text(ivan.chat, ivan, "привет")
    await tg.wait_until(lambda: "У модели закончилась квота" in tg.text_of(77), timeout=15)
    await tg.wait_until(lambda: tg.messages(77)[-1].buttons == ["🔄 Заново"], timeout=10)

    tg.send_text(ivan.chat, ivan, "/help")
    await tg.wait_until(lambda: "Я Phi-4-multimodal" in tg.text_of(77), timeout=10)
    tg.send_text(ivan.chat, ivan, "x" * 9000)
    await tg.wait_until(lambda: "В этом сообщении 9000 символов" in tg.text_of(77), timeout=10)

    tg.send_text(alice.chat, alice, "/help")
    await tg.wait_until(lambda: "I am Phi-4-multimodal" in tg.text_of(42), timeout=10)
    assert {c["command"]: c["description"] for c in tg.commands}["new"] == (
        "Start a fresh conversation"
    )
    russian = {c["command"]: c["description"] for c in tg.commands_for(language_code="ru")}
    assert russian["new"] == "Начать новый разговор"
    system_prompt = model.chat_requests[-1].json["messages"][0]["content"]
    assert "in the language the user writes in" in system_prompt


async def test_a_question_edited_while_its_answer_is_written_is_answered_anew(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.reply = lambda body: f"about {last_user_text(body)} " + "and more " * 40
    model.chunk_size = 4
    model.chunk_delay = 0.05
    await start_bot()
    alice = tg.private_user(42, "Alice")
    question = tg.send_text(alice.chat, alice, "dgos")
    await tg.wait_until(lambda: tg.text_of(42).startswith("about dgos"), timeout=10)
    tg.edit_text(alice.chat, question, "dogs")
    await tg.wait_until(
        lambda: (
            tg.text_of(42).startswith("about dogs") and tg.messages(42)[-1].buttons == [REGENERATE]
        ),
        timeout=20,
    )
    assert len(tg.messages(42)) == 1
    assert len(model.chat_requests) == 2
    assert [m["role"] for m in model.chat_requests[-1].json["messages"]] == ["system", "user"]
