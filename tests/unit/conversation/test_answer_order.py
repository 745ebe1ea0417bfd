"""The order of an answer's steps: the rule itself, and the pipeline walking it against a real
SQLite store, as one sequence of what storage, the model and the chat saw."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.conversation.answer_order import AnswerSteps, OutOfOrder, Step
from bot.conversation.checkpoints import CheckpointWriter
from bot.conversation.lanes import ConversationLanes
from bot.conversation.pipeline import TurnPipeline
from bot.conversation.store_retry import StoreRetry
from bot.conversation.turns import ReplyTarget
from bot.phi4 import Conversation
from bot.shared.tasks import TaskSupervisor
from storage import AnswerStatus, ConversationKey, SQLiteStore
from tests.unit.conversation.test_pipeline_store_failures import Chat, ShownAnswer

KEY = ConversationKey(42)

# -- the rule ---------------------------------------------------------------------------


def walk(*steps: Step) -> AnswerSteps:
    answer = AnswerSteps()
    for step in steps:
        answer.reach(step)
    return answer


def test_the_full_order_is_accepted_with_the_first_text_anywhere_in_the_stream() -> None:
    walk(
        Step.TURN_STORED,
        Step.REQUESTED,
        Step.FIRST_TEXT,
        Step.ROW_STORED,
        Step.WATCHED,
        Step.GENERATED,
        Step.UNWATCHED,
        Step.SHOWN,
        Step.RECORDED,
    )


def test_without_a_row_the_row_steps_are_skipped() -> None:
    walk(Step.TURN_STORED, Step.REQUESTED, Step.GENERATED, Step.SHOWN, Step.RECORDED)


@pytest.mark.parametrize(
    "steps",
    [
        (Step.REQUESTED,),  # asked before the question is stored
        (Step.TURN_STORED, Step.REQUESTED, Step.GENERATED, Step.RECORDED),  # stored unshown
        (
            Step.TURN_STORED,
            Step.REQUESTED,
            Step.ROW_STORED,
            Step.WATCHED,
            Step.GENERATED,
            Step.SHOWN,
        ),  # checkpoints still on when the end comes
        (Step.TURN_STORED, Step.REQUESTED, Step.WATCHED),  # watched without a row
        (Step.TURN_STORED, Step.FIRST_TEXT),  # text before any request
        (Step.TURN_STORED, Step.REQUESTED, Step.FIRST_TEXT, Step.FIRST_TEXT),
        (Step.TURN_STORED, Step.REQUESTED, Step.GENERATED, Step.FIRST_TEXT),
        (Step.TURN_STORED, Step.REQUESTED, Step.REQUESTED),
    ],
)
def test_a_step_out_of_order_raises(steps: tuple[Step, ...]) -> None:
    with pytest.raises(OutOfOrder):
        walk(*steps)


# -- the pipeline walking it --------------------------------------------------------------


class Events(list[str]):
    """What happened, in order: the pipeline's steps and what the fakes saw."""


class TracedStore(SQLiteStore):
    events: Events
    fail_start = False

    async def start_answer(self, conversation_id: int, user_turn_id: int) -> int:
        if self.fail_start:
            self.fail_start = False
            raise OSError("disk I/O error")
        answer_id = await super().start_answer(conversation_id, user_turn_id)
        self.events.append("db: answer row")
        return answer_id

    async def finish_answer(self, turn_id: int, **end: Any) -> None:
        self.events.append(f"db: end {end['status'].value}")
        await super().finish_answer(turn_id, **end)


class TracedView(ShownAnswer):
    def __init__(self, events: Events) -> None:
        super().__init__()
        self.events = events

    async def finish(self, *, note: str | None = None) -> list[int]:
        self.events.append("chat: final")
        return await super().finish(note=note)


class TracedChat(Chat):
    def __init__(self, events: Events) -> None:
        super().__init__()
        self.events = events

    def open_answer(self, target: ReplyTarget, **_: Any) -> TracedView:
        self.answers.append(TracedView(self.events))
        return self.answers[-1]  # type: ignore[return-value]


class TracedModel:
    name = "test"
    accepts: frozenset[Any] = frozenset()

    def __init__(self, events: Events) -> None:
        self.events = events

    async def stream(self, conversation: Conversation, *, on_queue: Any = None) -> Any:
        self.events.append("model: asked")
        for chunk in ("all ", "is ", "well"):
            yield chunk

    async def probe(self) -> str:
        return "ok"

    async def aclose(self) -> None:
        pass


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TracedStore]:
    opened = TracedStore(tmp_path / "bot.db", max_attachment_bytes=1000)
    opened.events = Events()
    async with opened:
        yield opened


async def answer_traced(store: TracedStore) -> tuple[Events, int]:
    events = store.events
    turn = await store.record_user_turn(KEY, text="hi", chat_id=42, message_id=1)
    assert turn is not None
    pipeline = TurnPipeline(
        replies=TracedChat(events),
        settings=Settings(_env_file=None),
        store=store,
        backend=TracedModel(events),
        lanes=ConversationLanes(),
        checkpoints=CheckpointWriter(store),
        tasks=TaskSupervisor(),
        store_retry=StoreRetry(0.2, first_pause=0.01),
        on_step=lambda step: events.append(step.value),
    )
    await pipeline.answer(ReplyTarget(KEY, False, 1), turn.conversation_id, turn.user_turn_id)
    return events, turn.conversation_id


def without_the_stream(events: Events) -> list[str]:
    """The events whose order the rule fixes; the stream's own are checked apart."""
    stream = events[events.index("request sent") + 1 : events.index("stream over")]
    assert stream.index("model: asked") < stream.index("first text")
    return [e for e in events if e not in ("model: asked", "first text")]


async def test_an_answer_is_stored_shown_and_recorded_in_the_rule_s_order(
    store: TracedStore,
) -> None:
    events, conversation_id = await answer_traced(store)
    assert without_the_stream(events) == [
        "turn stored",
        "request sent",
        "db: answer row",
        "answer row stored",
        "checkpoints on",
        "stream over",
        "checkpoints off",
        "chat: final",
        "final state shown",
        "db: end complete",
        "end stored",
    ]
    latest = await store.latest_answer(conversation_id)
    assert latest is not None and latest.status is AnswerStatus.COMPLETE


async def test_an_answer_whose_row_failed_is_stored_whole_at_its_end(
    store: TracedStore,
) -> None:
    store.fail_start = True
    events, conversation_id = await answer_traced(store)
    assert without_the_stream(events) == [
        "turn stored",
        "request sent",
        "stream over",
        "chat: final",
        "final state shown",
        "db: answer row",
        "db: end complete",
        "end stored",
    ]
    latest = await store.latest_answer(conversation_id)
    assert latest is not None and latest.status is AnswerStatus.COMPLETE
