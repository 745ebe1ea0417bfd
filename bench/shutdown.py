"""How long SIGTERM takes with 200 answers streaming, and whether every answer is recorded.

Run from the repo root: `.venv/bin/python -m bench.shutdown [--chats 200] [--deadline S]`.
The real `phi4bot run` process talks to the fake Telegram (Telegram's default flood limits)
and to a fake OpenAI-compatible server that streams each chat a long answer (about a
minute); once every chat shows its answer, the bench sends SIGTERM and times the exit.
Then it reads the database: every chat's answer must be recorded with the messages that
show it, either stopped (its last edit went out before the deadline) or left streaming
with its text so far (the next start finds it cut off and sends the restart notice).

Targets: the process exits within `PHI4BOT_SHUTDOWN_SECONDS` (20 s unless `--deadline`)
plus 5 s for what runs outside the bot's deadline, and no answer is left unrecorded.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import (
    BOT_USERNAME,
    Table,
    bot_env,
    secs,
    start_bot,
    stop_bot,
    verdict,
    wait_for,
)
from storage import AnswerStatus, ConversationKey, open_store
from tests.e2e.bot_process import TOKEN
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

DEFAULT_DEADLINE = 20.0
EXIT_SLACK = 5.0


@dataclass
class Recorded:
    """What the database holds of the answers the flood was writing."""

    stopped: int = 0
    cut: int = 0  # still `streaming`: the next start marks it interrupted
    missing: int = 0  # no answer row, or not the messages the chat shows


async def read_back(workdir: Path, tg: FakeTelegram, chat_ids: list[int]) -> Recorded:
    recorded = Recorded()
    store = await open_store(f"sqlite:///{workdir / 'bot.db'}", max_attachment_bytes=1000)
    try:
        for chat_id in chat_ids:
            conversation = await store.current_conversation(ConversationKey(chat_id, None))
            answer = await store.latest_answer(conversation)
            shown = tuple(m.message_id for m in tg.messages(chat_id))
            if answer is None or answer.message_ids != shown:
                recorded.missing += 1
            elif answer.status is AnswerStatus.STOPPED:
                recorded.stopped += 1
            elif answer.status is AnswerStatus.STREAMING:
                recorded.cut += 1
            else:
                recorded.missing += 1
    finally:
        await store.close()
    return recorded


async def run(chats: int, deadline: float | None, workdir: Path) -> Table:
    async with (
        FakeTelegram(token=TOKEN, bot_username=BOT_USERNAME) as tg,
        FakeOpenAIServer() as model,
    ):
        model.answer = " ".join(f"word{i}" for i in range(600))
        model.chunk_size, model.chunk_delay = 8, 0.1
        env = bot_env(tg, model, workdir)
        if deadline is not None:
            env["PHI4BOT_SHUTDOWN_SECONDS"] = f"{deadline:g}"
        bot = await start_bot(tg, env, workdir)
        users = [tg.private_user(40_000 + i, f"U{i}") for i in range(chats)]
        flood_at = time.monotonic()
        for user in users:
            tg.send_text(user.chat, user, "tell me a long story")
        shown = await wait_for(tg, lambda: all(tg.messages(u.id) for u in users), timeout=120)
        streaming = model.streaming_now
        signalled = time.monotonic()
        exit_code = await stop_bot(bot, timeout=90.0)
        took = time.monotonic() - signalled
        recorded = await read_back(workdir, tg, [u.id for u in users])

    limit = (deadline or DEFAULT_DEADLINE) + EXIT_SLACK
    table = Table(f"SIGTERM with {chats} answers streaming (deadline {deadline or 'default'})")
    table.add("every chat showing its answer", secs(signalled - flood_at), ok=shown)
    table.add("answers streaming at SIGTERM", str(streaming))
    table.add("SIGTERM -> exit", secs(took), f"<= {limit:g} s", ok=took <= limit)
    table.add("exit code", "killed" if exit_code is None else str(exit_code), "0", exit_code == 0)
    table.add("answers recorded as stopped", str(recorded.stopped))
    table.add("answers recorded cut off (text so far)", str(recorded.cut))
    table.add("answers not recorded", str(recorded.missing), "0", recorded.missing == 0)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=200, help="answers streaming (default 200)")
    parser.add_argument(
        "--deadline", type=float, help="PHI4BOT_SHUTDOWN_SECONDS (default: the bot's own)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="phi4bot-bench-") as tmp:
        try:
            table = asyncio.run(run(args.chats, args.deadline, Path(tmp)))
        except RuntimeError as exc:  # the bot could not start: nothing was measured
            print(exc, flush=True)
            return verdict([], [f"{args.chats} chats"])
    table.print()
    return verdict([row.metric for row in table.misses()])


if __name__ == "__main__":
    sys.exit(main())
