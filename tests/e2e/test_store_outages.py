"""The database failing under the real bot: a message written meanwhile is held and answered
once the store is back, exactly once, and never sent to the model before it is stored."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tests.e2e.conftest import StartBot, last_user_text
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

LOCK_SECONDS = 12.0

_HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
db.execute("COMMIT")
"""


@contextlib.asynccontextmanager
async def write_lock_held_by_another_process(path: Path) -> AsyncIterator[None]:
    """Another process holds the database's write lock (`BEGIN EXCLUSIVE`) for the block."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLD_LOCK,
        str(path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"locked\n"
        yield
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 10)


def stored_user_turns(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT text FROM turns WHERE role = 'user'")]


async def test_a_message_written_while_sqlite_is_locked_is_answered_once_after(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, tmp_path: Path
) -> None:
    model.reply = lambda body: f"echo: {last_user_text(body)}"
    bot = await start_bot()
    alice = tg.private_user(42, "Alice")
    requests_before = len(model.chat_requests)
    loop = asyncio.get_running_loop()
    async with write_lock_held_by_another_process(tmp_path / "bot.db"):
        locked_at = loop.time()
        tg.send_text(alice.chat, alice, "are you there?")
        await bot.wait_for_log("the database is locked by another writer", timeout=10)
        await asyncio.sleep(LOCK_SECONDS - (loop.time() - locked_at))  # the outage itself
        assert len(model.chat_requests) == requests_before, "the model was asked before storing"
        assert not tg.messages(42)
    await tg.wait_until(lambda: tg.text_of(42) == "echo: are you there?", timeout=10)
    await bot.wait_for_log("the database works again", timeout=5)
    assert len(model.chat_requests) == requests_before + 1
    assert stored_user_turns(tmp_path / "bot.db") == ["are you there?"]
    assert len(tg.messages(42)) == 1
    assert await bot.stop() == 0
