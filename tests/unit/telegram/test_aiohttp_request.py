"""The aiohttp request layer speaks the Bot API as PTB's own httpx layer does.

A real PTB `Bot` on `AiohttpRequest` against the fake Telegram: JSON calls with structured
parameters, multipart uploads, file downloads, Telegram's errors as PTB's exceptions; and
against a bare socket, timeouts and refused connections as `TimedOut` / `NetworkError`.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.telegram.aiohttp_request import AiohttpRequest
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_jpeg


def me(result: object) -> dict[str, object]:
    """getMe's result, which the request layer returns as the JSON value it is."""
    assert isinstance(result, dict)
    return result


TOKEN = "123:ABC"
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def client(url: str, read_timeout: float = 5.0) -> Bot:
    return Bot(
        TOKEN,
        base_url=f"{url}/bot",
        base_file_url=f"{url}/file/bot",
        request=AiohttpRequest(connection_pool_size=8, read_timeout=read_timeout),
        get_updates_request=AiohttpRequest(read_timeout=read_timeout),
    )


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="phi4_test_bot", limits=None) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with client(tg.url) as ptb:
        yield ptb


async def test_structured_parameters_travel_as_json(tg: FakeTelegram, bot: Bot) -> None:
    tg.private_user(42, "Alice")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("⏹ Stop", callback_data="stop")]])
    sent = await bot.send_message(
        42,
        "bold — ünïcode ✓",
        entities=[MessageEntity("bold", 0, 4)],
        reply_markup=keyboard,
    )
    assert sent.text == "bold — ünïcode ✓"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [("bold", 0, 4)]
    assert tg.messages(42)[0].buttons == ["⏹ Stop"]
    edited = await bot.edit_message_text("now edited", 42, sent.message_id)
    assert not isinstance(edited, bool) and edited.text == "now edited"
    assert tg.text_of(42) == "now edited"


async def test_uploads_are_multipart_and_downloads_come_back_whole(
    tg: FakeTelegram, bot: Bot
) -> None:
    alice = tg.private_user(42, "Alice")
    await bot.send_document(42, b"%PDF-1.4 body", filename="answer.pdf", caption="full answer")
    document = tg.documents(42)[0]
    assert (document.file_name, document.data) == ("answer.pdf", b"%PDF-1.4 body")
    large = make_jpeg(640, 480)
    tg.send_photo(alice.chat, alice, [make_jpeg(32, 24), large])
    (update,) = await bot.get_updates()
    assert update.message is not None
    photo = await update.message.photo[-1].get_file()
    assert await photo.download_as_bytearray() == large


async def test_telegram_errors_become_ptb_exceptions(tg: FakeTelegram, bot: Bot) -> None:
    tg.private_user(42, "Alice")
    sent = await bot.send_message(42, "same")
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("same", 42, sent.message_id)
    tg.fail_next(1, 429, method="sendMessage", retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(42, "too fast")
    assert "3" in str(caught.value)
    tg.fail_next(1, 502, method="sendMessage")  # nginx's HTML page, not JSON
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(42, "through a broken gateway")
    tg.reset_next(1, method="sendMessage")
    with pytest.raises(NetworkError):
        await bot.send_message(42, "connection dropped")
    assert [m.text for m in tg.messages(42)] == ["same"]


async def test_a_slow_answer_times_out_and_a_closed_port_is_a_network_error(
    tg: FakeTelegram,
) -> None:
    tg.private_user(42, "Alice")
    async with client(tg.url, read_timeout=0.3) as ptb:
        tg.delay_next(1, 3.0, method="sendMessage")
        with pytest.raises(TimedOut):
            await ptb.send_message(42, "late")
        assert (await ptb.send_message(42, "on time")).text == "on time"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nobody = AiohttpRequest(connect_timeout=1.0)
    await nobody.initialize()
    try:
        with pytest.raises(NetworkError):
            await nobody.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
    finally:
        await nobody.shutdown()


async def test_it_is_usable_only_between_initialize_and_shutdown(tg: FakeTelegram) -> None:
    request = AiohttpRequest()
    url = f"{tg.url}/bot{TOKEN}/getMe"
    with pytest.raises(NetworkError, match="not initialized"):
        await request.post(url)  # PTB wraps a layer's own errors as NetworkError
    await request.initialize()
    assert me(await request.post(url))["username"] == "phi4_test_bot"
    await request.shutdown()
    await request.initialize()  # PTB may start an application again in the same process
    assert me(await request.post(url))["username"] == "phi4_test_bot"
    await request.shutdown()
    await request.shutdown()  # a second shutdown is harmless
    with pytest.raises(NetworkError, match="not initialized"):
        await request.post(url)


def test_payloads_parse_fast_and_bad_bytes_still_parse() -> None:
    assert AiohttpRequest.parse_json_payload(b'{"ok": true, "result": [1]}') == {
        "ok": True,
        "result": [1],
    }
    assert AiohttpRequest.parse_json_payload(b'{"ok": true, "x": "a\xffb"}')["x"] == "a\ufffdb"


async def test_proxies_come_from_the_environment_once_per_host(
    tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fake Telegram doubles as the proxy: it reads the absolute-form request target
    monkeypatch.setenv("HTTP_PROXY", tg.url)
    monkeypatch.setenv("NO_PROXY", "bypassed.invalid")
    request = AiohttpRequest(connect_timeout=1.0)
    await request.initialize()
    try:
        answer = await request.post(f"http://telegram.invalid/bot{TOKEN}/getMe")
        assert me(answer)["username"] == "phi4_test_bot"
        with pytest.raises(NetworkError):  # no proxy for this host, and no such host
            await request.post(f"http://bypassed.invalid/bot{TOKEN}/getMe")
    finally:
        await request.shutdown()
