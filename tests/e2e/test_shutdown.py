"""SIGTERM in the middle of a flood: the bot stops within its one deadline, and every answer
it was writing is recorded with the messages that show it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storage import AnswerStatus, ConversationKey, open_store
from tests.e2e.conftest import StartBot
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

CHATS = 200
DEADLINE = 10.0
EXIT_SLACK = 5.0
"""Seconds beyond the deadline for what runs outside it: PTB stopping its updater before the
bot's shutdown begins, and closing the database and the HTTP clients after it."""


async def test_sigterm_mid_flood_records_every_partial_answer_within_the_deadline(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, tmp_path: Path
) -> None:
    model.answer = " ".join(f"word{i}" for i in range(400))  # ~40 s at this pace
    model.chunk_size, model.chunk_delay = 8, 0.2
    bot = await start_bot(
        PHI4BOT_SHUTDOWN_SECONDS=str(DEADLINE),
        PHI4BOT_EDIT_INTERVAL="1.0",
        LOG_LEVEL="INFO",
    )
    users = [tg.private_user(10_000 + i, f"User{i}") for i in range(CHATS)]
    for user in users:
        tg.send_text(user.chat, user, "tell me a long story")
    await tg.wait_until(
        lambda: all(tg.messages(user.id) for user in users),
        timeout=60,
        what="every chat showing its answer",
    )
    assert model.streaming_now > CHATS // 2, "the answers are still being written"

    loop = asyncio.get_running_loop()
    stopped_at = loop.time()
    exit_code = await bot.stop(timeout=DEADLINE + EXIT_SLACK + 10)
    took = loop.time() - stopped_at
    assert exit_code == 0, bot.log()[-3000:]
    assert took <= DEADLINE + EXIT_SLACK, f"stopping took {took:.1f} s"

    store = await open_store(f"sqlite:///{tmp_path / 'bot.db'}", max_attachment_bytes=1000)
    try:
        outcomes: dict[AnswerStatus, int] = {}
        for user in users:
            conversation = await store.current_conversation(ConversationKey(user.id, None))
            answer = await store.latest_answer(conversation)
            assert answer is not None, f"chat {user.id}: no answer recorded"
            shown = tuple(m.message_id for m in tg.messages(user.id))
            assert answer.message_ids == shown, f"chat {user.id}: its messages were not recorded"
            assert answer.status in (AnswerStatus.STOPPED, AnswerStatus.STREAMING)
            outcomes[answer.status] = outcomes.get(answer.status, 0) + 1
            if answer.status is AnswerStatus.STOPPED:
                history = await store.history(conversation, char_budget=100_000, media_limit=0)
                text = history[-1].text
                assert history[-1].role == "assistant" and text
                assert model.answer.startswith(text), f"chat {user.id}: {text[-80:]!r}"
        # Those whose last edit missed the deadline are found cut off at the next start, with
        # the messages they showed: the restart notice goes to each of them.
        cut = [p for p in await store.unfinished_answers() if p.assistant_turn_id is not None]
        assert len(cut) == outcomes.get(AnswerStatus.STREAMING, 0)
        assert all(p.reply_message_ids for p in cut)
    finally:
        await store.close()
