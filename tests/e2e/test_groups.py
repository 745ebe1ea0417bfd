"""Groups end to end: the bot speaks only when addressed, one conversation per group or topic."""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import BOT_USERNAME, StartBot, last_user_text
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_png

MENTION = f"@{BOT_USERNAME}"


def echo(model: FakeOpenAIServer) -> None:
    model.reply = lambda body: f"re: {last_user_text(body)}"
    model.chunk_delay = 0.0


async def test_only_messages_addressed_to_the_bot_are_answered(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    echo(model)
    await start_bot()
    group = tg.group(title="Team")
    anna = tg.private_user(1, "Anna")
    ben = tg.private_user(2, "Ben")
    tg.send_text(group, anna, "good morning everyone")
    tg.send_text(group, anna, "/new@other_bot")
    tg.send_text(group, ben, f"hey {MENTION.upper()} what is 2+2?")
    answer = "re: Ben: hey what is 2+2?"
    await tg.wait_until(lambda: answer in [m.text for m in tg.messages(group.id)], timeout=10)
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    assert [m.text for m in tg.messages(group.id)] == [answer]
    assert len(model.chat_requests) == 1

    reply_to_bot = tg.messages(group.id)[0].message_id
    tg.send_text(group, anna, "and times 3?", reply_to=reply_to_bot)
    await tg.wait_until(lambda: len(tg.messages(group.id)) == 2, timeout=10)
    tg.send_text(group, anna, f"/ask@{BOT_USERNAME} capital of Peru?")
    await tg.wait_until(lambda: len(tg.messages(group.id)) == 3, timeout=10)
    assert [m.text for m in tg.messages(group.id)][1:] == [
        "re: Anna: and times 3?",
        "re: Anna: capital of Peru?",
    ]
    roles = [
        (m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]["text"])
        for m in model.chat_requests[-1].json["messages"][1:]
    ]
    assert roles[0] == ("user", "Ben: hey what is 2+2?")


async def test_a_mention_in_a_photo_caption_is_answered_with_the_photo(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    echo(model)
    await start_bot()
    group = tg.group(title="Team")
    anna = tg.private_user(1, "Anna")
    tg.send_photo(group, anna, make_png(64, 48, (255, 0, 0)), caption=f"{MENTION} what color?")
    # the answer streams: its first message may show a beginning before the edit completes it
    await tg.wait_until(lambda: tg.text_of(group.id) == "re: Anna: what color?", timeout=10)
    assert len(tg.messages(group.id)) == 1
    parts = model.chat_requests[-1].json["messages"][-1]["content"]
    assert any(p["type"] == "image_url" for p in parts)


async def test_forum_topics_keep_separate_conversations_and_replies_stay_in_their_topic(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    echo(model)
    await start_bot()
    forum = tg.group(title="Forum", is_forum=True)
    anna = tg.private_user(1, "Anna")
    cooking = tg.create_topic(forum, anna, "Cooking")
    travel = tg.create_topic(forum, anna, "Travel")
    tg.send_text(forum, anna, f"{MENTION} pasta?", thread_id=cooking)
    await tg.wait_until(lambda: tg.messages(forum.id, cooking), timeout=10)
    tg.send_text(forum, anna, f"{MENTION} Rome?", thread_id=travel)
    await tg.wait_until(lambda: tg.messages(forum.id, travel), timeout=10)
    assert tg.messages(forum.id, travel)[0].text == "re: Anna: Rome?"
    messages = model.chat_requests[-1].json["messages"]
    assert [m["role"] for m in messages] == ["system", "user"], "topics must not share history"


async def test_a_migrated_group_keeps_its_history(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    echo(model)
    await start_bot()
    group = tg.group(chat_id=-4242, title="Old", type="group")
    anna = tg.private_user(1, "Anna")
    tg.send_text(group, anna, f"{MENTION} remember the code 1234")
    await tg.wait_until(lambda: tg.messages(group.id), timeout=10)
    new = tg.migrate_group(group.id, -1_000_000_004_242, by=anna)
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    tg.send_text(new, anna, f"{MENTION} what was the code?")
    await tg.wait_until(lambda: tg.messages(new.id), timeout=10)
    contents = [m["content"] for m in model.chat_requests[-1].json["messages"]]
    assert any("1234" in str(c) for c in contents[:-1])


async def test_five_mentions_in_ten_seconds_are_all_answered_without_a_429(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.reply = lambda body: f"re: {last_user_text(body)} " + "yes " * 40
    model.chunk_size = 8
    model.chunk_delay = 0.05
    await start_bot(PHI4BOT_GROUP_EDIT_INTERVAL="3")
    group = tg.group(title="Busy")
    people = [tg.private_user(n, f"P{n}") for n in range(1, 6)]
    for person in people:
        tg.send_text(group, person, f"{MENTION} question {person.id}")
        await asyncio.sleep(1.0)

    def all_answered() -> bool:
        texts = [m.text for m in tg.messages(group.id)]
        return len(texts) == 5 and all(t.endswith("yes") for t in texts)

    await tg.wait_until(all_answered, timeout=60, what="five answers")
    assert tg.stats.flood_429 == 0


async def test_system_is_for_group_admins_only(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    echo(model)
    await start_bot()
    group = tg.group(title="Team")
    anna = tg.private_user(1, "Anna")
    boss = tg.private_user(2, "Boss")
    tg.set_member(group, anna, "member")
    tg.set_member(group, boss, "administrator")
    tg.send_text(group, anna, f"/system@{BOT_USERNAME} Talk like a pirate.")
    await tg.wait_until(lambda: tg.messages(group.id), timeout=10)
    assert "Only group admins" in tg.messages(group.id)[0].text
    tg.send_text(group, boss, f"/system@{BOT_USERNAME} Talk like a pirate.")
    await tg.wait_until(lambda: len(tg.messages(group.id)) == 2, timeout=10)
    tg.send_text(group, anna, f"{MENTION} hello")
    await tg.wait_until(lambda: len(tg.messages(group.id)) == 3, timeout=10)
    assert model.chat_requests[-1].json["messages"][0]["content"] == "Talk like a pirate."


async def test_outside_the_allowed_chats_the_bot_says_once_it_is_not_enabled(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    echo(model)
    allowed = tg.group(title="Allowed")
    other = tg.group(title="Other")
    await start_bot(PHI4BOT_ALLOWED_CHATS=str(allowed.id), PHI4BOT_ALLOWED_USERS="1")
    anna = tg.private_user(1, "Anna")
    for text in (f"{MENTION} hi", f"{MENTION} hello?", f"/ask@{BOT_USERNAME} anyone?"):
        tg.send_text(other, anna, text)
    tg.send_text(allowed, anna, f"{MENTION} hi")
    await tg.wait_until(lambda: tg.messages(allowed.id), timeout=10)
    await tg.wait_until(lambda: tg.pending_updates == 0, timeout=10)
    assert [m.text for m in tg.messages(other.id)] == ["I am not enabled in this chat."]
    assert len(model.chat_requests) == 1


async def test_each_answer_sees_the_conversation_up_to_its_own_question(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.reply = lambda body: f"re: {last_user_text(body)}"
    model.chunk_size = 2
    model.chunk_delay = 0.05
    await start_bot()
    group = tg.group(title="Team")
    anna, ben, carl = (
        tg.private_user(n, name) for n, name in ((1, "Anna"), (2, "Ben"), (3, "Carl"))
    )
    tg.send_text(group, anna, f"{MENTION} one")
    await tg.wait_until(lambda: tg.messages(group.id), timeout=10)
    tg.send_text(group, ben, f"{MENTION} two")
    tg.send_text(group, carl, f"{MENTION} three")
    await tg.wait_until(lambda: len(model.chat_requests) == 3, timeout=30)
    asked = [last_user_text(r.json) for r in model.chat_requests]
    assert asked == ["Anna: one", "Ben: two", "Carl: three"]
    await tg.wait_until(lambda: tg.messages(group.id)[-1].text == "re: Carl: three", timeout=30)


async def test_a_members_stop_or_retry_on_anothers_answer_is_refused_as_the_buttons_are(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = " ".join(f"word{n}" for n in range(60))
    model.chunk_size = 6
    model.chunk_delay = 0.1  # about 6 s of streaming
    await start_bot()
    group = tg.group(title="Team")
    anna, ben = tg.private_user(1, "Anna"), tg.private_user(3, "Ben")
    tg.set_member(group, anna, "member")
    tg.set_member(group, ben, "member")
    tg.send_text(group, anna, f"{MENTION} tell me a long story")
    await tg.wait_until(lambda: tg.messages(group.id), timeout=10, what="the answer starting")
    tg.send_text(group, ben, f"/stop@{BOT_USERNAME}")
    refused = "Only the person who asked (or a group admin) can do that."
    await tg.wait_until(lambda: any(m.text == refused for m in tg.messages(group.id)), timeout=10)
    await tg.wait_until(
        lambda: tg.messages(group.id)[0].text == model.answer, timeout=20, what="the whole answer"
    )
    tg.send_text(group, ben, f"/retry@{BOT_USERNAME}")
    await tg.wait_until(
        lambda: [m.text for m in tg.messages(group.id)].count(refused) == 2, timeout=10
    )
    assert len(model.chat_requests) == 1, "neither stopped nor asked again"

    tg.send_text(group, anna, f"/stop@{BOT_USERNAME}")  # nothing being written: says so
    tg.send_text(group, anna, f"/retry@{BOT_USERNAME}")
    await tg.wait_until(lambda: len(model.chat_requests) == 2, timeout=10, what="anna's retry")


async def test_an_admins_stats_and_export_in_a_group_go_to_the_admins_private_chat(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    echo(model)
    await start_bot(PHI4BOT_ADMINS="7")
    secret_chat = tg.private_user(42, "Alice")
    tg.send_text(secret_chat.chat, secret_chat, "my private question")
    await tg.wait_until(lambda: tg.messages(42), timeout=10)
    group = tg.group(title="Team")
    admin = tg.private_user(7, "Admin")
    tg.set_member(group, admin, "member")
    tg.send_text(group, admin, f"/export@{BOT_USERNAME} 42")
    await tg.wait_until(lambda: tg.documents(7), timeout=10, what="the export, privately")
    assert b"my private question" in tg.documents(7)[0].data
    tg.send_text(group, admin, f"/stats@{BOT_USERNAME}")
    await tg.wait_until(lambda: len(tg.messages(group.id)) == 2, timeout=10)
    assert [m.text for m in tg.messages(group.id)] == ["I sent it to you in our private chat."] * 2
    assert tg.documents(group.id) == []
    await tg.wait_until(lambda: "42 ·" in tg.text_of(7), timeout=10, what="the stats, privately")
