"""The webhook refuses a wrong secret and a big body from the headers, before reading it."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from tests.e2e.conftest import StartBot
from tests.e2e.test_big_images import peak_rss_mib
from tests.e2e.test_modes import free_port, wait_listening
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

SECRET = "webhook-guard-s3cret"
MIB = 1024 * 1024


async def post(port: int, mib: int, secret: str, expect: bool = False) -> tuple[int, int]:
    """POST `mib` MiB to the webhook: the status (0 when the connection was reset before the
    answer could be read), and how many MiB the bot let the client send.

    A plain client writes the body while the answer may already come; the bot then closes
    with the body unread, and the kernel's reset may discard the 403 before the client reads
    it. A client sending `Expect: 100-continue` (as curl does for big bodies) waits for the
    answer first and always reads it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST /hook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\n"
        + ("Expect: 100-continue\r\n" if expect else "")
        + f"Content-Length: {mib * MIB}\r\nX-Telegram-Bot-Api-Secret-Token: {secret}\r\n\r\n"
    )
    if expect:
        writer.write(head.encode())
        status_line = await asyncio.wait_for(reader.readline(), 30)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        return int(status_line.split()[1]), 0
    writer.write(head.encode())
    sent = 0

    async def send() -> None:
        nonlocal sent
        chunk = b" " * MIB
        with contextlib.suppress(ConnectionError):
            for _ in range(mib):
                writer.write(chunk)
                await writer.drain()
                sent += 1

    sending = asyncio.create_task(send())
    try:
        status_line = await asyncio.wait_for(reader.readline(), 30)
    except ConnectionResetError:
        status_line = b"HTTP/1.1 0 reset"
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return int(status_line.split()[1]), sent


async def test_a_90_mb_post_with_a_wrong_secret_is_refused_unread(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = "via webhook"
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    bot = await start_bot(
        "--webhook-url", url, "--port", str(port), wait=False, PHI4BOT_WEBHOOK_SECRET=SECRET
    )
    await tg.wait_until(lambda: tg.webhook.get("url") == url, timeout=30, what="setWebhook")
    async with aiohttp.ClientSession() as session:
        await wait_listening(session, url)
    before = peak_rss_mib(bot)
    refused = [await post(port, 90, "wrong") for _ in range(4)]
    polite = await post(port, 90, "wrong", expect=True)
    too_big = await post(port, 2, SECRET, expect=True)
    grown = peak_rss_mib(bot) - before
    assert {status for status, _ in refused} <= {403, 0}, refused  # 403, or reset unread
    assert polite == (403, 0)
    assert all(sent < 20 for _, sent in refused), f"the bot read on: {refused} MiB sent"
    assert too_big[0] == 413
    print(f"peak RSS growth of the bot: {grown:.1f} MiB, sent: {refused}")
    assert grown < 20, f"the bot's peak RSS grew by {grown:.0f} MiB"

    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "hello over the webhook")
    await tg.wait_until(lambda: tg.text_of(42) == "via webhook", timeout=15)
