"""The fake Bot API's guest mode answers a real python-telegram-bot client as Telegram would."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    MessageEntity,
    Update,
)
from telegram.error import BadRequest, Forbidden, RetryAfter

from tests.fakes.telegram import FakeTelegram, ManualClock
from tests.fakes.test_fake_telegram import TOKEN, client, seconds
from tests.media_factory import make_jpeg

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="phi4_test_bot", limits=None) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with client(tg) as ptb:
        yield ptb


def article(
    text: str, reply_markup: InlineKeyboardMarkup | None = None
) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        "answer", "Phi-4", InputTextMessageContent(text), reply_markup=reply_markup
    )


async def test_get_me_says_whether_guest_queries_are_supported(tg: FakeTelegram, bot: Bot) -> None:
    assert (await bot.get_me()).supports_guest_queries is True
    tg.world.guest_mode = False
    assert (await bot.get_me()).supports_guest_queries is False


async def test_a_summon_arrives_only_when_asked_for_with_its_reply_as_context(
    tg: FakeTelegram, bot: Bot
) -> None:
    friends = tg.guest_chat()
    alice, bob = tg.private_user(1, "Alice"), tg.private_user(2, "Bob")
    photo = tg.send_photo(friends, bob, make_jpeg(), caption="menu")
    assert tg.pending_updates == 0  # the bot is not a member: it sees nothing of the chat
    tg.summon(friends, alice, "@phi4_test_bot translate", reply_to=photo)
    assert await bot.get_updates(allowed_updates=["message"]) == ()
    tg.summon(friends, alice, "@phi4_test_bot again")
    updates = await bot.get_updates(allowed_updates=["message", "guest_message"])
    assert len(updates) == 1
    message = updates[0].guest_message
    assert message is not None and message.guest_query_id
    assert message.chat.id == friends.id and message.from_user is not None
    assert message.from_user.id == alice.id
    assert message.parse_entities([MessageEntity.MENTION]) != {}
    summon = tg.summon(friends, alice, "@phi4_test_bot what is it?", reply_to=photo)
    update = Update.de_json({"update_id": 9, "guest_message": summon}, bot)
    assert update.guest_message is not None
    replied = update.guest_message.reply_to_message
    assert replied is not None and replied.photo and replied.caption == "menu"


async def test_a_summon_is_answered_once_then_edited_by_inline_message_id(
    tg: FakeTelegram, bot: Bot
) -> None:
    friends = tg.guest_chat("group")
    alice = tg.private_user(1, "Alice")
    summon = tg.summon(friends, alice, "@phi4_test_bot hi")
    with pytest.raises(Forbidden, match="not a member"):
        await bot.send_message(friends.id, "hello")
    assert tg.guest_answer(summon) is None
    stop = InlineKeyboardMarkup([[InlineKeyboardButton("Stop", callback_data="stop")]])
    sent = await bot.answer_guest_query(summon["guest_query_id"], article("…", reply_markup=stop))
    with pytest.raises(BadRequest, match=r"(?i)query_id_invalid"):
        await bot.answer_guest_query(summon["guest_query_id"], article("again"))
    answer = tg.guest_answer(summon)
    assert answer is not None and answer.text == "…" and answer.buttons == ["Stop"]
    assert answer.reply_to == summon["message_id"]
    bold = [MessageEntity(MessageEntity.BOLD, 0, 5)]
    done = await bot.edit_message_text(
        "Hello there", inline_message_id=sent.inline_message_id, entities=bold
    )
    assert done is True
    assert answer.text == "Hello there" and answer.keyboard is None and answer.edits == 1
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text(
            "Hello there", inline_message_id=sent.inline_message_id, entities=bold
        )
    link = InlineKeyboardMarkup([[InlineKeyboardButton("More", url="https://t.me/x?start=a")]])
    await bot.edit_message_reply_markup(inline_message_id=sent.inline_message_id, reply_markup=link)
    assert answer.buttons == ["More"]
    with pytest.raises(BadRequest, match=r"(?i)message_id_invalid"):
        await bot.edit_message_text("x", inline_message_id="nope")
    shown = friends.messages[answer.message_id]
    assert shown["from"]["id"] == tg.world.bot.id
    assert shown["guest_bot_caller_user"]["id"] == alice.id
    assert tg.text_of(friends.id) == "Hello there"


async def test_a_press_under_a_guest_message_carries_its_inline_message_id(
    tg: FakeTelegram, bot: Bot
) -> None:
    friends = tg.guest_chat("private")
    alice, bob = tg.private_user(1, "Alice"), tg.private_user(2, "Bob")
    summon = tg.summon(friends, alice, "@phi4_test_bot hi")
    stop = InlineKeyboardMarkup([[InlineKeyboardButton("Stop", callback_data="stop")]])
    sent = await bot.answer_guest_query(summon["guest_query_id"], article("…", reply_markup=stop))
    answer = tg.guest_answer(summon)
    assert answer is not None
    query_id = tg.press_guest_button(answer, bob, "Stop")
    updates = await bot.get_updates(allowed_updates=["callback_query", "guest_message"])
    query = updates[-1].callback_query
    assert query is not None and query.message is None
    assert query.inline_message_id == sent.inline_message_id and query.from_user.id == bob.id
    await query.answer("no")
    assert tg.press(query_id).text == "no"


async def test_each_guest_message_is_paced_like_a_group_message() -> None:
    clock = ManualClock()
    async with FakeTelegram(token=TOKEN, clock=clock) as tg, client(tg) as bot:
        friends = tg.guest_chat()
        alice = tg.private_user(1, "Alice")
        first = tg.summon(friends, alice, "@phi4_test_bot one")
        second = tg.summon(friends, alice, "@phi4_test_bot two")
        one = await bot.answer_guest_query(first["guest_query_id"], article("0"))
        for n in range(1, 20):
            await bot.edit_message_text(str(n), inline_message_id=one.inline_message_id)
        with pytest.raises(RetryAfter) as flood:
            await bot.edit_message_text("21st", inline_message_id=one.inline_message_id)
        assert seconds(flood.value) == 60  # twenty in any minute, as in a group
        await bot.answer_guest_query(second["guest_query_id"], article("own window"))
        assert tg.stats.flood_429 == 1 and tg.stats.flood_429_by_chat[friends.id] == 1
        assert len(tg.stats.chat_requests[friends.id]) == 22
