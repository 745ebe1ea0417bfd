"""Retention as the bot runs it: the background sweeper the settings turn on, and
`phi4bot db stats`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings
from bot.conversation.retention import DAY, RetentionSweeper
from bot.shared.tasks import TaskSupervisor
from storage import ConversationKey, NewAttachment, SQLiteStore, Store, open_store

PHOTO = NewAttachment("image", "image/png", b"\x89PNG photo", "cat.png")


async def _chats(store: Store, count: int) -> None:
    for chat in range(count):
        await store.record_user_turn(
            ConversationKey(chat), text="hi", chat_id=chat, message_id=1, attachments=[PHOTO]
        )


def test_retention_is_off_unless_a_setting_asks_for_it() -> None:
    settings = Settings(_env_file=None)
    assert (settings.retention_days, settings.media_retention_days) == (None, None)
    on = Settings(_env_file=None, PHI4BOT_RETENTION_DAYS="30", PHI4BOT_MEDIA_RETENTION_DAYS="7")
    assert (on.retention_days, on.media_retention_days) == (30, 7)


async def test_a_sweep_goes_batch_by_batch_until_nothing_is_left(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with SQLiteStore(tmp_path / "bot.db", max_attachment_bytes=100) as store:
        await _chats(store, 7)
        later = time.time() + 31 * DAY
        sweeper = RetentionSweeper(
            store, conversation_days=30, media_days=None, batch=3, pause=0, clock=lambda: later
        )
        with caplog.at_level("INFO", logger="bot.conversation.retention"):
            assert await sweeper.sweep() == (7, 0)
        assert "deleted 7 conversations untouched for 30 days" in caplog.text
        assert await store.chat_stats() == []
        assert await sweeper.sweep() == (0, 0)


async def test_a_sweep_keeps_what_is_younger_than_the_settings_say(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "bot.db", max_attachment_bytes=100) as store:
        await _chats(store, 2)
        later = time.time() + 10 * DAY
        sweeper = RetentionSweeper(store, conversation_days=30, media_days=7, clock=lambda: later)
        assert await sweeper.sweep() == (0, 1)  # one photo, sent twice: its bytes go
        assert len(await store.chat_stats()) == 2


async def test_the_sweeper_runs_in_the_background_until_closed(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "bot.db", max_attachment_bytes=100) as store:
        later = time.time() + 2 * DAY
        sweeper = RetentionSweeper(
            store,
            conversation_days=1,
            media_days=None,
            first_after=0,
            every=0.01,
            clock=lambda: later,
        )
        tasks = TaskSupervisor()
        assert sweeper.start(tasks) is not None
        await _chats(store, 3)
        for _ in range(200):
            if not await store.chat_stats():
                break
            await asyncio.sleep(0.01)
        assert await store.chat_stats() == []
        assert await tasks.drain(asyncio.get_running_loop().time() + 1) == 0  # cancelled
        assert len(tasks) == 0


async def test_no_sweeper_runs_when_retention_is_off(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "bot.db", max_attachment_bytes=100) as store:
        sweeper = RetentionSweeper(store, conversation_days=None, media_days=None, first_after=0)
        tasks = TaskSupervisor()
        assert sweeper.start(tasks) is None
        assert len(tasks) == 0


def test_db_stats_prints_each_tables_size_and_the_oldest_conversation(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def fill() -> None:
        store = await open_store(store_url, max_attachment_bytes=100)
        try:
            await _chats(store, 2)
        finally:
            await store.close()

    asyncio.run(fill())
    assert main(["db", "stats", "--url", store_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("database: ")
    rows = {line.split()[0]: line.split()[1] for line in lines[2:9]}
    assert rows == {
        "conversations": "2",
        "turns": "2",
        "attachments": "2",
        "blobs": "1",
        "chat_settings": "0",
        "handled_commands": "0",
        "held_messages": "0",
    }
    assert lines[9].startswith("oldest conversation: 1 in chat 0, last written 20")


def test_db_stats_of_a_database_that_cannot_be_used_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert main(["db", "stats", "--url", f"sqlite:///{folder}"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"phi4bot: The database path {folder} is a directory, not a file."
    )
