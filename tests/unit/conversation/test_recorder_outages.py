"""The recorder holds an arriving turn through a database outage: stored once it is back,
refused with one sentence past the limit, and given up (counted) at shutdown."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.conversation.errors import StoreStillUnavailable
from bot.conversation.recorder import TurnRecorder
from bot.conversation.store_retry import StoreRetry
from bot.conversation.turns import IncomingTurn, ReplyTarget
from bot.shared.tasks import TaskSupervisor
from storage import ConversationKey, RecordedTurn, SQLiteStore
from tests.unit.conversation.text_recorder import text_recorder


class LockedFor(SQLiteStore):
    """A store whose turn writes fail as a locked database does, the first `failures` times."""

    failures = 0
    tries = 0

    async def record_user_turn(self, *args: Any, **kwargs: Any) -> RecordedTurn | None:
        self.tries += 1
        if self.tries <= self.failures:
            raise sqlite3.OperationalError("database is locked")
        return await super().record_user_turn(*args, **kwargs)


def turn(chat_id: int, message_id: int, text: str) -> IncomingTurn:
    return IncomingTurn(ReplyTarget(ConversationKey(chat_id), False), text, message_id, 7, "A")


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    async with LockedFor(tmp_path / "bot.db", max_attachment_bytes=1000) as opened:
        yield opened


def recorder(
    store: LockedFor, refused: list[str], limit: float, tasks: TaskSupervisor | None = None
) -> TurnRecorder:
    retry = StoreRetry(limit, first_pause=0.01, longest_pause=0.02)
    return text_recorder(store, refused, tasks=tasks, retry=retry)


async def test_a_turn_is_stored_once_the_lock_is_gone_and_later_ones_wait_behind_it(
    store: LockedFor,
) -> None:
    store.failures = 3
    refused: list[str] = []
    recording = recorder(store, refused, limit=5.0)
    first = recording.accept(turn(42, 1, "first"), exempt=True)
    second = recording.accept(turn(42, 2, "second"), exempt=True)
    other = recording.accept(turn(43, 1, "other chat"), exempt=True)
    stored = await asyncio.gather(first, second, other)
    assert all(accepted is not None for accepted in stored)
    assert refused == []
    ids = [accepted.user_turn_id for accepted in stored if accepted is not None]
    assert ids[0] < ids[1], "a chat's turns are stored in arrival order"
    again = await recording.accept(turn(42, 1, "first"), exempt=True)
    assert again is None, "the same message delivered again is not a second turn"


async def test_past_the_limit_the_sender_is_asked_to_send_it_again(
    store: LockedFor, caplog: pytest.LogCaptureFixture
) -> None:
    store.failures = 10**6
    refused: list[str] = []
    assert await recorder(store, refused, limit=0.05).accept(turn(42, 1, "hi"), exempt=True) is None
    assert refused == [StoreStillUnavailable.user_message]
    assert "1 turns refused since start-up" in caplog.text


async def test_turns_still_waiting_at_shutdown_are_given_up_and_counted(
    store: LockedFor, caplog: pytest.LogCaptureFixture
) -> None:
    store.failures = 10**6
    tasks = TaskSupervisor()
    recording = recorder(store, [], limit=60.0, tasks=tasks)
    waiting = [recording.accept(turn(42, n, "hi"), exempt=True) for n in (1, 2)]
    with caplog.at_level(logging.WARNING):
        assert await tasks.drain(asyncio.get_running_loop().time() + 0.05) == 2
        recording.report_given_up()
    assert all(task.done() for task in waiting)
    assert "store-message-1-" in caplog.text and "store-message-2-" in caplog.text
    assert "2 arriving messages were not stored before shutdown" in caplog.text
