"""An answer's request leaves before its row is stored, but nothing shows before it is.

A crash in between must leave a turn that is simply still waiting (answered afresh on
restart), never a message in the chat that no stored answer knows about.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from bot.config import Settings
from bot.conversation.checkpoints import CheckpointWriter
from bot.conversation.lanes import ConversationLanes
from bot.conversation.pipeline import TurnPipeline
from bot.conversation.turns import ReplyTarget
from bot.phi4 import Conversation, QueueListener, QueuePosition
from bot.shared import MediaKind
from storage import ConversationKey, SQLiteStore

KEY = ConversationKey(42)


class GatedStore(SQLiteStore):
    """Stores as SQLite does, but `start_answer` waits until the test opens the gate."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, max_attachment_bytes=1000)
        self.gate = asyncio.Event()
        self.answer_started = asyncio.Event()

    async def start_answer(self, conversation_id: int, user_turn_id: int) -> int:
        await self.gate.wait()
        answer_id = await super().start_answer(conversation_id, user_turn_id)
        self.answer_started.set()
        return answer_id


class QueuedModel:
    """Reports a queue place, then answers at once; notes when it was asked."""

    name = "fake"
    accepts: frozenset[MediaKind] = frozenset()

    def __init__(self) -> None:
        self.asked = asyncio.Event()

    async def stream(
        self, conversation: Conversation, *, on_queue: QueueListener | None = None
    ) -> AsyncIterator[str]:
        self.asked.set()
        if on_queue is not None:
            on_queue(QueuePosition(rank=0))
        yield "hello"

    async def probe(self) -> str:
        return "fine"

    async def aclose(self) -> None:
        return None


class WatchedView:
    """Records what the pipeline asked the chat to show."""

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.text = ""
        self.message_ids: list[int] = []
        self.answer_shown_at: float | None = None

    def append(self, chunk: str) -> None:
        self.text += chunk
        self.shown.append(chunk)

    async def show_status(self, text: str) -> None:
        self.shown.append(text)

    async def finish(self, *, note: str | None = None) -> list[int]:
        return self.message_ids

    async def fail(self, user_message: str) -> list[int]:
        return self.message_ids


class WatchedReplies:
    def __init__(self) -> None:
        self.view = WatchedView()

    def open_answer(
        self,
        target: ReplyTarget,
        *,
        drafts: bool = True,
        controls: bool = False,
        take_over: Sequence[int] = (),
    ) -> WatchedView:
        return self.view

    async def say(self, target: ReplyTarget, text: str) -> list[int]:
        return []

    def typing(self, target: ReplyTarget) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()


async def test_nothing_is_shown_until_the_answer_is_stored(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "bot.db")
    await store.open()
    try:
        replies, model = WatchedReplies(), QueuedModel()
        pipeline = TurnPipeline(
            replies=replies,
            settings=Settings(_env_file=None),  # type: ignore[call-arg]
            store=store,
            backend=model,
            lanes=ConversationLanes(),
            checkpoints=CheckpointWriter(store),
        )
        recorded = await store.record_user_turn(KEY, text="hi", chat_id=42, message_id=1)
        assert recorded is not None
        answering = asyncio.create_task(
            pipeline.answer(
                ReplyTarget(KEY, is_group=False), recorded.conversation_id, recorded.user_turn_id
            )
        )
        await asyncio.wait_for(model.asked.wait(), 5)  # the request did not wait for the row
        for _ in range(20):
            await asyncio.sleep(0)
        assert replies.view.shown == [], "shown before the answer was stored"
        store.gate.set()
        await asyncio.wait_for(answering, 5)
        assert store.answer_started.is_set()
        assert replies.view.shown[-1] == "hello"
        assert set(replies.view.shown) <= {"⏳ In queue: position 1", "hello"}
    finally:
        await store.close()
