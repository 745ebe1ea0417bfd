"""The fake Bot API answers a real python-telegram-bot client as Telegram would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters
from telegram.request import HTTPXRequest

from tests.fakes.telegram import FakeTelegram, Limits, ManualClock, Window
from tests.media_factory import make_jpeg

TOKEN = "123:ABC"
# PTB 22 warns that RetryAfter.retry_after will become a timedelta; `seconds` reads either.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def client(tg: FakeTelegram, token: str = TOKEN, read_timeout: float = 5.0) -> Bot:
    """A real PTB bot pointed at the fake the way TELEGRAM_API_URL is used."""
    return Bot(
        token,
        base_url=f"{tg.url}/bot",
        base_file_url=f"{tg.url}/file/bot",
        request=HTTPXRequest(read_timeout=read_timeout),
        get_updates_request=HTTPXRequest(read_timeout=read_timeout),
    )


def seconds(error: RetryAfter) -> int:
    """`retry_after` in whole seconds, whichever type this PTB version gives it."""
    value = error.retry_after
    return value if isinstance(value, int) else int(value.total_seconds())


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="phi4_test_bot", limits=None) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with client(tg) as ptb:
        yield ptb


# --- protocol -----------------------------------------------------------------------------


async def test_get_me_describes_the_bot_at_the_api_root_plus_bot_token(bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123, True, "phi4_test_bot")
    assert me.can_read_all_group_messages is False


async def test_wrong_token_unknown_method_and_encodings_answer_like_telegram(
    tg: FakeTelegram,
) -> None:
    async with aiohttp.ClientSession() as http:
        wrong = await http.post(f"{tg.url}/bot999:XYZ/getMe")
        assert wrong.status == 401
        assert await wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        unknown = await http.post(f"{tg.url}/bot{TOKEN}/sendTelepathy")
        assert (unknown.status, (await unknown.json())["description"]) == (404, "Not Found")
        alice = tg.private_user(7, "Alice")
        as_json = await http.post(
            f"{tg.url}/bot{TOKEN}/sendMessage",
            json={
                "chat_id": 7,
                "text": "json",
                "entities": [{"type": "bold", "offset": 0, "length": 4}],
            },
        )
        as_form = await http.post(
            f"{tg.url}/bot{TOKEN}/SENDMESSAGE",
            data={
                "chat_id": "7",
                "text": "form",
                "entities": '[{"type":"italic","offset":0,"length":4}]',
            },
        )
        as_query = await http.get(f"{tg.url}/bot{TOKEN}/sendMessage?chat_id=7&text=query")
        bodies = [await r.json() for r in (as_json, as_form, as_query)]
    assert [b["ok"] for b in bodies] == [True, True, True]
    assert [m.text for m in tg.messages(alice.chat.id)] == ["json", "form", "query"]
    assert [m.entities[0]["type"] for m in tg.messages(7)[:2]] == ["bold", "italic"]
    with pytest.raises(InvalidToken, match="rejected by the server"):
        async with client(tg, token="999:XYZ"):
            pass


# --- sending and editing ------------------------------------------------------------------


async def test_send_message_returns_a_real_message_with_entities_and_reply(
    tg: FakeTelegram, bot: Bot
) -> None:
    alice = tg.private_user(42, "Alice", "alice")
    question = tg.send_text(alice.chat, alice, "what is 😀?")
    sent = await bot.send_message(
        42,
        "😀 means happy",
        entities=[MessageEntity("bold", 0, 2)],
        reply_parameters=ReplyParameters(question["message_id"]),
    )
    assert sent.message_id == question["message_id"] + 1
    assert sent.from_user.id == 123 and sent.chat.type == "private"
    assert sent.entities == (MessageEntity("bold", 0, 2),)
    assert sent.reply_to_message.text == "what is 😀?"
    [stored] = tg.messages(42)
    assert (stored.text, stored.reply_to, stored.edits) == (
        "😀 means happy",
        question["message_id"],
        0,
    )


async def test_edit_records_history_and_identical_content_is_not_modified(
    tg: FakeTelegram, bot: Bot
) -> None:
    alice = tg.private_user(42, "Alice")
    sent = await bot.send_message(42, "Hel")
    await bot.edit_message_text("Hello", 42, sent.message_id)
    await bot.edit_message_text(
        "Hello", 42, sent.message_id, entities=[MessageEntity("bold", 0, 5)]
    )
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text(
            "Hello ", 42, sent.message_id, entities=[MessageEntity("bold", 0, 5)]
        )
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", 42, 999)
    user_message = tg.send_text(alice.chat, alice, "mine")
    with pytest.raises(BadRequest, match="can't be edited"):
        await bot.edit_message_text("yours", 42, user_message["message_id"])
    [message] = tg.messages(42)
    assert [text for _, text in message.history] == ["Hel", "Hello", "Hello"]
    assert message.entities == [{"type": "bold", "offset": 0, "length": 5}]


async def test_inline_keyboards_ride_on_sends_and_edits_and_presses_are_answered_once(
    tg: FakeTelegram, bot: Bot
) -> None:
    alice = tg.private_user(42, "Alice")
    stop = InlineKeyboardMarkup([[InlineKeyboardButton("Stop", callback_data="stop")]])
    sent = await bot.send_message(42, "Hel", reply_markup=stop)
    [message] = tg.messages(42)
    assert message.buttons == ["Stop"]
    await bot.edit_message_text("Hello", 42, sent.message_id, reply_markup=stop)
    assert message.buttons == ["Stop"]
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Hello", 42, sent.message_id, reply_markup=stop)
    query_id = tg.press_button(alice.chat, alice, sent.message_id, "Stop")
    [update] = await bot.get_updates()
    assert update.callback_query is not None and update.callback_query.data == "stop"
    assert update.callback_query.message.message_id == sent.message_id
    assert tg.unanswered_presses == [tg.press(query_id)]
    await bot.answer_callback_query(query_id, "done")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query_id)
    assert tg.press(query_id).text == "done" and not tg.unanswered_presses
    await bot.edit_message_text("Hello!", 42, sent.message_id)
    assert message.buttons == [], "an edit without reply_markup removes the keyboard"
    await bot.edit_message_reply_markup(42, sent.message_id, reply_markup=stop)
    assert message.buttons == ["Stop"]
    await bot.edit_message_reply_markup(42, sent.message_id)
    assert message.buttons == []
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(42, sent.message_id)
    with pytest.raises(ValueError, match="no button"):
        tg.press_button(alice.chat, alice, sent.message_id, "Stop")


async def test_a_user_edit_arrives_as_an_edited_message_update(tg: FakeTelegram, bot: Bot) -> None:
    alice = tg.private_user(42, "Alice", language_code="ru")
    sent = tg.send_text(alice.chat, alice, "helo")
    tg.edit_text(alice.chat, sent, "hello @someone")
    updates = await bot.get_updates()
    assert [u.message is not None for u in updates] == [True, False]
    edited = updates[1].edited_message
    assert edited is not None and edited.message_id == sent["message_id"]
    assert edited.text == "hello @someone" and edited.edit_date is not None
    assert edited.entities[0].type == "mention"
    assert edited.from_user is not None and edited.from_user.language_code == "ru"


async def test_text_limits_are_counted_in_utf16_units_after_trimming(
    tg: FakeTelegram, bot: Bot
) -> None:
    tg.private_user(42, "Alice")
    await bot.send_message(42, "😀" * 2048)  # 4096 UTF-16 units: the maximum
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(42, "😀" * 2048 + "!")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(42, " \n\t ")
    await bot.send_message(42, "  padded  ", entities=[MessageEntity("bold", 0, 8)])
    assert tg.messages(42)[-1].text == "padded"
    assert tg.messages(42)[-1].entities == [{"type": "bold", "offset": 0, "length": 6}]


@pytest.mark.parametrize(
    ("entity", "why"),
    [
        ({"type": "bold", "offset": 3, "length": 2}, "beyond the text"),  # 😀 is 2 units
        ({"type": "glitter", "offset": 0, "length": 1}, "unsupported entity type"),
        ({"type": "bold", "offset": -1, "length": 1}, "invalid offset"),
        ({"type": "bold", "offset": 0, "length": 0}, "invalid length"),
        ({"type": "text_link", "offset": 0, "length": 1}, "'url' must be specified"),
    ],
)
async def test_misplaced_or_malformed_entities_cannot_be_parsed(
    tg: FakeTelegram, entity: dict[str, object], why: str
) -> None:
    tg.private_user(42, "Alice")
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            f"{tg.url}/bot{TOKEN}/sendMessage",
            json={"chat_id": 42, "text": "a😀", "entities": [entity]},
        )
        body = await answer.json()
    assert answer.status == 400
    assert body["description"].startswith("Bad Request: can't parse entities: ")
    assert why in body["description"]


async def test_only_the_first_100_entities_are_kept(tg: FakeTelegram, bot: Bot) -> None:
    tg.private_user(42, "Alice")
    entities = [MessageEntity("bold", i, 1) for i in range(150)]
    sent = await bot.send_message(42, "x" * 150, entities=entities)
    assert len(sent.entities) == 100 and sent.entities[-1].offset == 99


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("*half bold", "MarkdownV2"),
        ("ends.", "MarkdownV2"),
        ("<b>open", "HTML"),
        ("_x", "Markdown"),
    ],
)
async def test_broken_markup_under_parse_mode_is_refused(
    tg: FakeTelegram, bot: Bot, text: str, mode: str
) -> None:
    tg.private_user(42, "Alice")
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await bot.send_message(42, text, parse_mode=mode)


async def test_well_formed_markup_becomes_entities(tg: FakeTelegram, bot: Bot) -> None:
    tg.private_user(42, "Alice")
    sent = await bot.send_message(
        42, "*bold* and [link](https://x\\.org)\\.", parse_mode="MarkdownV2"
    )
    assert sent.text == "bold and link."
    assert [(e.type, e.offset, e.length, e.url) for e in sent.entities] == [
        ("bold", 0, 4, None),
        ("text_link", 9, 4, "https://x.org"),
    ]
    html = await bot.send_message(
        42, "<pre><code class='language-py'>x = 1</code></pre>", parse_mode="HTML"
    )
    assert (html.entities[0].type, html.entities[0].language) == ("pre", "py")


async def test_documents_drafts_actions_deletes_and_commands_are_recorded(
    tg: FakeTelegram, bot: Bot
) -> None:
    tg.private_user(42, "Alice")
    group = tg.group(-100500, "Team")
    sent = await bot.send_document(
        42, b"%PDF-1.4 body", filename="answer.pdf", caption="full answer"
    )
    assert sent.document.file_name == "answer.pdf" and sent.caption == "full answer"
    assert (tg.documents(42)[0].file_name, tg.documents(42)[0].data) == (
        "answer.pdf",
        b"%PDF-1.4 body",
    )
    assert await bot.send_message_draft(42, 7, "Thinking")
    assert await bot.send_message_draft(42, 7, "Thinking harder")
    assert [d.text for d in tg.drafts(42)] == ["Thinking", "Thinking harder"]
    with pytest.raises(BadRequest, match=r"(?i)textdraft_peer_invalid"):
        await bot.send_message_draft(group.id, 7, "no drafts in groups")
    await bot.send_chat_action(42, "typing")
    assert [a.action for a in tg.chat_actions(42)] == ["typing"]
    note = await bot.send_message(42, "soon gone")
    assert await bot.delete_message(42, note.message_id)
    assert [m.text for m in tg.messages(42)] == []
    await bot.set_my_commands([("new", "Start a fresh conversation")])
    assert tg.commands == [{"command": "new", "description": "Start a fresh conversation"}]


# --- updates ------------------------------------------------------------------------------


async def test_updates_stay_pending_until_a_later_offset_confirms_them(tg: FakeTelegram) -> None:
    alice = tg.private_user(42, "Alice")
    for text in ("one", "two", "three"):
        tg.send_text(alice.chat, alice, text)
    async with client(tg) as first_run:
        batch = await first_run.get_updates(limit=2)
        assert [u.message.text for u in batch] == ["one", "two"]
        await first_run.get_updates(offset=batch[0].update_id + 1, limit=1)
    async with client(tg) as after_restart:  # killed before confirming "two": it comes again
        again = await after_restart.get_updates()
        assert [u.message.text for u in again] == ["two", "three"]
        assert await after_restart.get_updates(offset=again[-1].update_id + 1) == ()
    assert tg.pending_updates == 0


async def test_long_poll_wakes_as_soon_as_an_update_is_queued(tg: FakeTelegram, bot: Bot) -> None:
    alice = tg.private_user(42, "Alice")
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await tg.wait_until(lambda: tg.stats.requests["getUpdates"] == 1, timeout=2)
    tg.send_text(alice.chat, alice, "/start@phi4_test_bot hello @someone")
    [update] = await asyncio.wait_for(poll, timeout=5)
    assert time.monotonic() - started < 10 / 2, "woke on the update, not at the poll's timeout"
    assert [(e.type, e.offset, e.length) for e in update.message.entities] == [
        ("bot_command", 0, 20),
        ("mention", 27, 8),
    ]


async def test_a_polling_application_answers_and_confirms_its_updates(tg: FakeTelegram) -> None:
    async def shout(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(update.message.text.upper())

    builder = ApplicationBuilder().token(TOKEN).base_url(f"{tg.url}/bot")
    app = builder.base_file_url(f"{tg.url}/file/bot").build()
    app.add_handler(MessageHandler(filters.TEXT, shout))
    alice = tg.private_user(42, "Alice")
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=10)
        tg.send_text(alice.chat, alice, "hello")
        await tg.wait_until(lambda: tg.text_of(42) == "HELLO", timeout=5)
        await app.updater.stop()
        await app.stop()
    assert tg.pending_updates == 0


async def test_a_new_long_poll_terminates_the_waiting_one_with_conflict(tg: FakeTelegram) -> None:
    async with client(tg) as old, client(tg) as new:
        waiting = asyncio.create_task(old.get_updates(timeout=10))
        await tg.wait_until(lambda: tg.world.updates.poller is not None, timeout=2)
        second = asyncio.create_task(new.get_updates(timeout=1))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await asyncio.wait_for(waiting, timeout=5)
        assert await second == ()


async def test_webhook_receives_updates_with_its_secret_and_blocks_get_updates(
    tg: FakeTelegram, bot: Bot
) -> None:
    received: list[tuple[str | None, dict[str, object]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        await bot.set_webhook(url, secret_token="s3cret")
        assert (await bot.get_webhook_info()).url == url
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        alice = tg.private_user(42, "Alice")
        tg.send_text(alice.chat, alice, "via webhook")
        await tg.wait_until(lambda: tg.pending_updates == 0 and received, timeout=5)
        assert received[0][0] == "s3cret"
        assert Update.de_json(received[0][1], bot).message.text == "via webhook"
    finally:
        await runner.cleanup()


# --- media, files, chats ------------------------------------------------------------------


async def test_user_media_arrives_as_telegram_objects_whose_files_download(
    tg: FakeTelegram, bot: Bot
) -> None:
    alice = tg.private_user(42, "Alice")
    small, large = make_jpeg(32, 24), make_jpeg(640, 480)
    tg.send_photo(alice.chat, alice, [small, large], caption="@phi4_test_bot what is this?")
    tg.send_voice(alice.chat, alice, b"OggS voice", duration=3)
    tg.send_audio(alice.chat, alice, b"ID3 song", 120, title="Song")
    tg.send_document(alice.chat, alice, b"%PDF", "paper.pdf", "application/pdf")
    tg.send_sticker(alice.chat, alice)
    photo, voice, audio, document, sticker = [u.message for u in await bot.get_updates()]
    assert [(p.width, p.height) for p in photo.photo] == [(32, 24), (640, 480)]
    assert photo.caption_entities[0].type == "mention"
    assert await (await photo.photo[-1].get_file()).download_as_bytearray() == large
    assert (voice.voice.mime_type, voice.voice.to_dict()["duration"]) == ("audio/ogg", 3)
    assert await (await voice.voice.get_file()).download_as_bytearray() == b"OggS voice"
    assert (audio.audio.title, document.document.file_name) == ("Song", "paper.pdf")
    assert sticker.sticker.emoji == "👍"


async def test_a_file_over_20_mb_is_too_big_to_get(tg: FakeTelegram, bot: Bot) -> None:
    file_id, _ = tg.register_file(b"head", size_override=20 * 1024 * 1024 + 1)
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(file_id)


async def test_forum_topics_members_and_migration_behave_like_telegram(
    tg: FakeTelegram, bot: Bot
) -> None:
    bob = tg.private_user(5, "Bob")
    forum = tg.group(-100900, "Forum", is_forum=True)
    tg.set_member(forum, bob, "creator")
    topic = tg.create_topic(forum, bob, "Questions")
    asked = tg.send_text(forum, bob, "@phi4_test_bot hi", thread_id=topic)
    assert asked["is_topic_message"] and asked["reply_to_message"]["forum_topic_created"]
    await bot.send_message(forum.id, "answer", message_thread_id=topic)
    assert tg.text_of(forum.id, thread_id=topic) == "answer"
    assert (await bot.get_chat_member(forum.id, 5)).status == "creator"
    assert [a.user.id for a in await bot.get_chat_administrators(forum.id)] == [5]
    old = tg.group(-77, "Old", type="group")
    new = tg.migrate_group(old.id, -100777)
    updates = [u.message for u in await bot.get_updates()]
    assert (updates[-2].migrate_to_chat_id, updates[-1].migrate_from_chat_id) == (new.id, old.id)
    with pytest.raises(ChatMigrated) as migrated:
        await bot.send_message(old.id, "hello?")
    assert migrated.value.new_chat_id == new.id


# --- flood control ------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_private_chat_bursts_three_then_takes_about_one_a_second(
    clock: ManualClock,
) -> None:
    async with FakeTelegram(token=TOKEN, clock=clock) as tg, client(tg) as bot:
        tg.private_user(42, "Alice")
        await bot.send_chat_action(42, "typing")  # counted like any message
        first = await bot.send_message(42, "1")
        await bot.edit_message_text("2", 42, first.message_id)
        with pytest.raises(RetryAfter) as flood:
            await bot.edit_message_text("3", 42, first.message_id)
        assert seconds(flood.value) == 1
        clock.advance(1)
        await bot.edit_message_text("3", 42, first.message_id)
        assert (tg.stats.flood_429, tg.stats.flood_429_by_chat[42]) == (1, 1)
        assert [r.status for r in tg.stats.chat_requests[42]] == [200, 200, 200, 429, 200]
        for n in range(6):  # 0.9 s apart: a little faster than one a second
            clock.advance(0.9)
            await bot.edit_message_text(f"fast {n}", 42, first.message_id)
        clock.advance(0.9)
        with pytest.raises(RetryAfter):  # the 11th within 10 s
            await bot.edit_message_text("one too many", 42, first.message_id)


async def test_groups_take_twenty_in_any_minute_however_they_are_spaced(
    clock: ManualClock,
) -> None:
    async with FakeTelegram(token=TOKEN, clock=clock) as tg, client(tg) as bot:
        burst, spaced, steady = (tg.group(-100500 - n, f"Team {n}") for n in range(3))
        for n in range(20):
            await bot.send_message(burst.id, str(n))
        with pytest.raises(RetryAfter) as flood:
            await bot.send_message(burst.id, "21st")
        assert seconds(flood.value) == 60
        with pytest.raises(RetryAfter) as flood:  # hammering costs a group 3 s a request
            await bot.send_message(burst.id, "22nd")
        assert seconds(flood.value) == 63
        for n in range(20):  # every 2 s: fine for 40 s, then the minute is full
            await bot.send_message(spaced.id, str(n))
            clock.advance(2)
        with pytest.raises(RetryAfter) as flood:
            await bot.send_message(spaced.id, "21st within a minute")
        assert seconds(flood.value) == 20
        for n in range(45):  # every 3 s is 20 a minute: never refused
            await bot.send_message(steady.id, str(n))
            clock.advance(3)
        assert tg.stats.flood_429_by_chat[steady.id] == 0


async def test_the_whole_bot_sends_thirty_a_second_across_chats(clock: ManualClock) -> None:
    async with FakeTelegram(token=TOKEN, clock=clock) as tg, client(tg) as bot:
        for user_id in range(1, 32):
            tg.private_user(user_id, f"User {user_id}")
        for user_id in range(1, 31):
            await bot.send_message(user_id, "hi")
        with pytest.raises(RetryAfter) as flood:
            await bot.send_message(31, "one too many for the bot")
        assert seconds(flood.value) == 1
        clock.advance(1)
        await bot.send_message(31, "next second")
        tg.limits = None
        for _ in range(40):
            await bot.send_message(31, "unlimited")


async def test_callback_answers_count_against_the_bot_but_no_chat(clock: ManualClock) -> None:
    limits = Limits(bot=(Window(2, 1.0),))
    async with FakeTelegram(token=TOKEN, clock=clock, limits=limits) as tg, client(tg) as bot:
        alice = tg.private_user(42, "Alice")
        buttons = InlineKeyboardMarkup([[InlineKeyboardButton("Stop", callback_data="stop")]])
        sent = await bot.send_message(42, "with a button", reply_markup=buttons)
        first = tg.press_button(alice.chat, alice, sent.message_id, "Stop")
        second = tg.press_button(alice.chat, alice, sent.message_id, "Stop")
        assert await bot.answer_callback_query(first)
        with pytest.raises(RetryAfter):
            await bot.answer_callback_query(second)
        assert [r.method for r in tg.stats.chat_requests[42]] == ["sendMessage"]


async def test_a_refusal_is_a_penalty_and_hammering_during_it_extends_it(
    clock: ManualClock,
) -> None:
    async with FakeTelegram(token=TOKEN, clock=clock) as tg, client(tg) as bot:
        tg.private_user(42, "Alice")
        for text in "abc":
            await bot.send_message(42, text)
        penalties = []
        for _ in range(3):  # each refused call pushes the end one second further
            with pytest.raises(RetryAfter) as flood:
                await bot.send_message(42, "impatient")
            penalties.append(seconds(flood.value))
        assert penalties == [1, 2, 3]
        clock.advance(2.5)
        with pytest.raises(RetryAfter) as flood:  # too early: refused, and longer again
            await bot.send_message(42, "still impatient")
        assert seconds(flood.value) == 2
        clock.advance(1.5)
        await bot.send_message(42, "patient at last")
        assert tg.stats.flood_429 == 4


async def test_an_injected_429_imposes_its_retry_after_on_that_chat(clock: ManualClock) -> None:
    async with FakeTelegram(token=TOKEN, clock=clock) as tg, client(tg) as bot:
        tg.private_user(42, "Alice")
        tg.private_user(43, "Bob")
        tg.fail_next(1, 429, method="sendMessage", retry_after=5)
        with pytest.raises(RetryAfter) as flood:
            await bot.send_message(42, "refused")
        assert seconds(flood.value) == 5
        await bot.send_message(43, "other chats are not penalised")
        clock.advance(3)
        with pytest.raises(RetryAfter) as flood:  # a bot ignoring retry_after is refused
            await bot.send_message(42, "too early")
        assert seconds(flood.value) == 3
        clock.advance(3)
        await bot.send_message(42, "after the penalty")
        assert [m.text for m in tg.messages(42)] == ["after the penalty"]


# --- failure injection ----------------------------------------------------------------------


async def test_injected_failures_surface_as_network_errors_and_timeouts(tg: FakeTelegram) -> None:
    tg.private_user(42, "Alice")
    async with client(tg, read_timeout=0.5) as bot:
        tg.fail_next(1, 502, method="sendMessage")
        await bot.get_me()  # other methods are untouched
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(42, "through nginx")
        tg.fail_next(1, 500, method="sendMessage", body="telegram")
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(42, "internal")
        tg.reset_next(1, method="sendMessage")
        with pytest.raises(NetworkError):
            await bot.send_message(42, "dropped")
        tg.delay_next(1, 2.0, method="sendMessage")
        with pytest.raises(TimedOut):
            await bot.send_message(42, "slow")
        await bot.send_message(42, "fine again")
    await tg.wait_until(lambda: tg.text_of(42).endswith("fine again"), timeout=5)
    assert "through nginx" not in tg.text_of(42) and tg.stats.faults == 4
    assert tg.pending_faults == []


async def test_a_fault_that_never_met_its_call_fails_the_test() -> None:
    expected = r"never met their calls: \['fail 502 x1 on sendMessage'\]"
    with pytest.raises(AssertionError, match=expected):
        async with FakeTelegram(token=TOKEN, limits=None) as tg, aiohttp.ClientSession() as http:
            tg.fail_next(2, 502, method="sendMessage")
            answer = await http.post(f"{tg.url}/bot{TOKEN}/sendMessage", json={"chat_id": 1})
            assert answer.status == 502


async def test_wait_until_times_out_with_a_summary_of_every_chat(
    tg: FakeTelegram, bot: Bot
) -> None:
    tg.private_user(42, "Alice")
    await bot.send_message(42, "partial answer")
    with pytest.raises(AssertionError, match=r"(?s)the final answer not reached.*partial answer"):
        await tg.wait_until(lambda: "final" in tg.text_of(42), timeout=0.2, what="the final answer")


async def test_two_hundred_chats_editing_concurrently_stay_fast(tg: FakeTelegram) -> None:
    users = [tg.private_user(1000 + n, f"User {n}") for n in range(200)]
    base = f"{tg.url}/bot{TOKEN}"

    async def stream(http: aiohttp.ClientSession, chat_id: int) -> None:
        sent = await (
            await http.post(f"{base}/sendMessage", json={"chat_id": chat_id, "text": "0"})
        ).json()
        for n in range(1, 10):
            edit = {"chat_id": chat_id, "message_id": sent["result"]["message_id"], "text": str(n)}
            assert (await (await http.post(f"{base}/editMessageText", json=edit)).json())["ok"]

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:
        await asyncio.gather(*(stream(http, u.id) for u in users))
    assert all(tg.text_of(u.id) == "9" for u in users)
    assert tg.stats.requests["editMessageText"] == 1800
