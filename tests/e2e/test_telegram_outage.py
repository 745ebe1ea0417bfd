"""Telegram away for 15 s: the bot is back within seconds of Telegram, without a 429."""

from __future__ import annotations

import asyncio
import time

from tests.e2e.conftest import StartBot
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

OUTAGE_SECONDS = 15.0
BACK_WITHIN = 3.0


async def test_a_message_written_during_a_15_s_outage_is_answered_within_3_s_of_recovery(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.reply = lambda body: "answered"
    bot = await start_bot()
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "before")
    await tg.wait_until(lambda: tg.text_of(42) == "answered", timeout=15)

    tg.go_down(502)  # every call, whatever the method, until it comes back
    bob = tg.private_user(43, "Bob")
    tg.send_text(bob.chat, bob, "just before")  # ends the long poll already waiting
    await asyncio.sleep(3.0)
    tg.send_text(alice.chat, alice, "written during the outage")  # only a new poll gets it
    await asyncio.sleep(OUTAGE_SECONDS - 3.0)
    polls_failed = tg.stats.faults
    tg.come_back()
    back = time.monotonic()
    await tg.wait_until(
        lambda: len(tg.messages(42)) == 2 and tg.messages(42)[-1].text == "answered",
        timeout=30,
        what="the answer to the message written during the outage",
    )
    took = time.monotonic() - back
    assert took <= BACK_WITHIN, f"answered {took:.1f} s after Telegram came back"
    assert tg.text_of(43) == "answered", "the answer being sent at the start arrives whole"
    assert polls_failed <= 30, f"{polls_failed} failed requests in {OUTAGE_SECONDS:g} s"
    await asyncio.sleep(2.0)  # what follows the recovery, too
    assert tg.stats.flood_429 == 0
    assert len(bot.log_lines("Telegram did not answer the long poll")) == 1
    print(f"answered {took:.2f} s after Telegram came back; {polls_failed} requests failed")
