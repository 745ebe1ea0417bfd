"""With a database shared by several processes, the recorder holds each sender to the cap on
waiting messages as the database counts them, and refuses the rest as a full lane does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.conversation.errors import QueueFull
from bot.conversation.recorder import TurnRecorder
from bot.conversation.turns import IncomingTurn, ReplyTarget
from storage import ConversationKey, SQLiteStore
from tests.unit.conversation.text_recorder import text_recorder


def turn(message_id: int, sender: int = 7) -> IncomingTurn:
    return IncomingTurn(ReplyTarget(ConversationKey(42), False), "hi", message_id, sender, "A")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "bot.db", max_attachment_bytes=1000) as opened:
        yield opened


def recorder(store: SQLiteStore, refused: list[str], cap: int | None) -> TurnRecorder:
    return text_recorder(store, refused, waiting_cap=cap)


async def test_a_sender_past_the_cap_is_told_to_send_it_again_afterwards(
    store: SQLiteStore,
) -> None:
    refused: list[str] = []
    recording = recorder(store, refused, cap=1)
    assert await recording.accept(turn(1), exempt=True) is not None  # in hand
    assert await recording.accept(turn(2), exempt=True) is not None  # waiting
    assert await recording.accept(turn(3), exempt=True) is None
    assert refused == [QueueFull.user_message]
    assert await recording.accept(turn(4, sender=8), exempt=True) is not None
    assert refused == [QueueFull.user_message], "another sender has room of their own"


async def test_one_process_alone_leaves_the_cap_to_its_lanes(store: SQLiteStore) -> None:
    refused: list[str] = []
    recording = recorder(store, refused, cap=None)
    for message_id in range(1, 5):
        assert await recording.accept(turn(message_id), exempt=True) is not None
    assert refused == []
