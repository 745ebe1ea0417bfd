"""An answer reaches the chat even when the database fails after the user's turn is stored:
what could not be stored is logged, and the lane carries on."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.conversation.checkpoints import CheckpointWriter
from bot.conversation.lanes import ConversationLanes
from bot.conversation.pipeline import TurnPipeline
from bot.conversation.store_retry import StoreRetry
from bot.conversation.turns import ReplyTarget
from bot.phi4 import Conversation
from bot.shared.tasks import TaskSupervisor
from storage import AnswerStatus, ConversationKey, SQLiteStore

KEY = ConversationKey(42)


class ShownAnswer:
    """An `AnswerView` that keeps what the chat would show."""

    def __init__(self) -> None:
        self.text = ""
        self.message_ids: list[int] = []
        self.answer_shown_at: float | None = None
        self.final: str | None = None

    def append(self, chunk: str) -> None:
        self.text += chunk

    async def show_status(self, text: str) -> None:
        pass

    async def finish(self, *, note: str | None = None) -> list[int]:
        self.final, self.message_ids = self.text, [700]
        return self.message_ids

    async def fail(self, user_message: str) -> list[int]:
        self.final, self.message_ids = user_message, [700]
        return self.message_ids


class Chat:
    """`ChatReplies` that records the answers opened and the sentences said."""

    def __init__(self) -> None:
        self.answers: list[ShownAnswer] = []
        self.said: list[str] = []

    def open_answer(
        self,
        target: ReplyTarget,
        *,
        drafts: bool = True,
        controls: bool = False,
        take_over: Sequence[int] = (),
    ) -> ShownAnswer:
        self.answers.append(ShownAnswer())
        return self.answers[-1]

    async def say(self, target: ReplyTarget, text: str) -> list[int]:
        self.said.append(text)
        return [800]

    async def offer_continue(self, target: ReplyTarget, message_id: int) -> None:
        raise AssertionError("no answer here is cut at the length limit")

    @contextlib.asynccontextmanager
    async def typing(self, target: ReplyTarget) -> AsyncIterator[None]:
        yield


class Model:
    """A backend that answers every conversation with the same chunks."""

    name = "test"
    accepts: frozenset[Any] = frozenset()

    def __init__(self) -> None:
        self.asked = 0

    async def stream(self, conversation: Conversation, *, on_queue: Any = None) -> Any:
        self.asked += 1
        for chunk in ("all ", "is ", "well"):
            yield chunk

    async def probe(self) -> str:
        return "ok"

    async def aclose(self) -> None:
        pass


class FailingAnswers(SQLiteStore):
    """A store whose answer writes fail as a locked database does, while `locked`."""

    locked = True

    async def start_answer(self, conversation_id: int, user_turn_id: int) -> int:
        if self.locked:
            raise sqlite3.OperationalError("database is locked")
        return await super().start_answer(conversation_id, user_turn_id)

    async def finish_answer(self, turn_id: int, **end: Any) -> None:
        if self.locked:
            raise sqlite3.OperationalError("database is locked")
        await super().finish_answer(turn_id, **end)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FailingAnswers]:
    opened = FailingAnswers(tmp_path / "bot.db", max_attachment_bytes=1000)
    async with opened:
        yield opened


def pipeline(store: SQLiteStore, chat: Chat, model: Model) -> TurnPipeline:
    return TurnPipeline(
        replies=chat,
        settings=Settings(_env_file=None),
        store=store,
        backend=model,
        lanes=ConversationLanes(),
        checkpoints=CheckpointWriter(store),
        tasks=TaskSupervisor(),
        store_retry=StoreRetry(0.2, first_pause=0.01),
    )


async def test_the_answer_is_shown_when_its_rows_cannot_be_stored(
    store: FailingAnswers, caplog: pytest.LogCaptureFixture
) -> None:
    chat, model = Chat(), Model()
    turn = await store.record_user_turn(KEY, text="hi", chat_id=42, message_id=1)
    assert turn is not None
    await pipeline(store, chat, model).answer(
        ReplyTarget(KEY, False, 1), turn.conversation_id, turn.user_turn_id
    )
    assert chat.answers[0].final == "all is well"
    assert "could not be recorded as started" in caplog.text
    assert "was sent but not stored (11 characters, complete)" in caplog.text
    assert (await store.latest_answer(turn.conversation_id)) is None


async def test_an_answer_whose_start_was_lost_is_stored_whole_once_the_store_is_back(
    store: FailingAnswers, caplog: pytest.LogCaptureFixture
) -> None:
    chat, model = Chat(), Model()
    turn = await store.record_user_turn(KEY, text="hi", chat_id=42, message_id=1)
    assert turn is not None
    answering = pipeline(store, chat, model)
    real_start = FailingAnswers.start_answer

    async def start_then_recover(self: FailingAnswers, *args: int) -> int:
        try:
            return await real_start(self, *args)
        finally:
            self.locked = False  # the first try fails; the store is back at the end

    store.start_answer = start_then_recover.__get__(store)  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO):
        await answering.answer(ReplyTarget(KEY, False, 1), turn.conversation_id, turn.user_turn_id)
    latest = await store.latest_answer(turn.conversation_id)
    assert latest is not None and latest.status is AnswerStatus.COMPLETE
    assert tuple(latest.message_ids) == (700,)
    assert "was sent but not stored" not in caplog.text
