"""Fifty guest summons at once, next to fifty group mentions: every answer ends exact and
Telegram never answers 429. The figures are printed (`pytest -s`) for comparison."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.telegram.streaming.render import render_markdown
from tests.e2e.conftest import BOT_USERNAME, StartBot
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import BotMessage, FakeTelegram

CHATS = 50
ANSWER = "".join(
    f"**Point {n}.** The answer streams in *small* chunks, like a real model's. `code {n}`\n\n"
    for n in range(8)
)


async def _until(tg: FakeTelegram, predicate: Callable[[], bool], started: float) -> float:
    await tg.wait_until(predicate, timeout=180, what=predicate.__name__)
    return asyncio.get_running_loop().time() - started


async def test_fifty_summons_at_once_end_exact_without_429_like_fifty_group_mentions(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot
) -> None:
    model.answer = ANSWER
    model.chunk_size = 4
    model.chunk_delay = 0.03  # ~150 chunks over ~5 s per answer
    await start_bot(PHI4BOT_GROUP_EDIT_INTERVAL="3.0", LOG_LEVEL="INFO")
    final = render_markdown(ANSWER).text
    loop = asyncio.get_running_loop()
    people = [tg.private_user(1000 + n, f"Person {n}") for n in range(CHATS)]

    groups = [tg.group(title=f"Group {n}") for n in range(CHATS)]
    started = loop.time()
    for group, person in zip(groups, people, strict=True):
        tg.send_text(group, person, f"@{BOT_USERNAME} tell me")

    def every_group_shows_text() -> bool:
        return all(tg.messages(g.id) and tg.messages(g.id)[0].text for g in groups)

    def every_group_answer_is_final() -> bool:
        return all(
            [m.text for m in tg.messages(g.id)] == [final]
            and tg.messages(g.id)[0].buttons == ["🔄 Regenerate"]
            for g in groups
        )

    group_text = await _until(tg, every_group_shows_text, started)
    group_final = await _until(tg, every_group_answer_is_final, started)
    group_429 = tg.stats.flood_429

    chats = [tg.guest_chat(title=f"Friends {n}") for n in range(CHATS)]
    started = loop.time()
    summons = [
        tg.summon(chat, person, f"@{BOT_USERNAME} tell me")
        for chat, person in zip(chats, people, strict=True)
    ]

    def answers() -> list[BotMessage | None]:
        return [tg.guest_answer(s) for s in summons]

    def every_guest_message_shows_text() -> bool:
        return all(a is not None and a.text not in ("", "…") for a in answers())

    def every_guest_answer_is_final() -> bool:
        return all(
            a is not None and a.text == final and a.buttons == ["🔄 Regenerate"] for a in answers()
        )

    guest_text = await _until(tg, every_guest_message_shows_text, started)
    guest_final = await _until(tg, every_guest_answer_is_final, started)
    guest_429 = tg.stats.flood_429 - group_429

    print(f"\n{'50 at once':<16} {'all show text':>14} {'all exact':>10} {'429s':>5}")
    print(f"{'group mentions':<16} {group_text:>12.1f} s {group_final:>8.1f} s {group_429:>5}")
    print(f"{'guest summons':<16} {guest_text:>12.1f} s {guest_final:>8.1f} s {guest_429:>5}")
    assert group_429 == 0 and guest_429 == 0
    assert tg.stats.requests["answerGuestQuery"] == CHATS
    assert len(model.chat_requests) == 2 * CHATS
