"""Answering conversations claimed from a shared database, without a database: the holder
answers every waiting turn oldest first, a conversation held elsewhere is left alone, a turn
stored while the lease was held is not forgotten, and a gone process's cut answer gets one
notice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.conversation.lanes import ConversationLanes
from bot.conversation.notices import RESTART_NOTICE
from bot.conversation.sharing import SharedAnswering
from bot.conversation.turns import ReplyTarget
from storage import ConversationKey, PendingAnswer, WaitingTurn

KEY = ConversationKey(7)


class FakeCoordination:
    """Leases and waiting turns in memory; `elsewhere` are keys another process holds."""

    shared = True
    instance_id = "here"

    def __init__(self) -> None:
        self.waiting: list[WaitingTurn] = []
        self.held: set[ConversationKey] = set()
        self.elsewhere: set[ConversationKey] = set()
        self.orphans: list[PendingAnswer] = []
        self.on_release: Callable[[], None] = lambda: None
        self.wakes: list[Callable[[ConversationKey], None]] = []

    async def claim(self, key: ConversationKey) -> bool:
        if key in self.elsewhere or key in self.held:
            return False
        self.held.add(key)
        return True

    async def release(self, key: ConversationKey) -> None:
        self.held.discard(key)
        self.on_release()

    def holds(self, key: ConversationKey) -> bool:
        return key in self.held

    async def next_waiting(self, key: ConversationKey) -> WaitingTurn | None:
        found = sorted((w for w in self.waiting if w.key == key), key=lambda w: w.user_turn_id)
        return found[0] if found else None

    async def waiting_conversations(self, within: float | None = None) -> list[ConversationKey]:
        return sorted({w.key for w in self.waiting} - self.elsewhere, key=str)

    async def orphaned_answers(self) -> list[PendingAnswer]:
        found, self.orphans = self.orphans, []
        return found

    async def wake(self, key: ConversationKey) -> None:
        for callback in self.wakes:
            callback(key)

    def on_wake(self, callback: Callable[[ConversationKey], None]) -> None:
        self.wakes.append(callback)

    def on_stop(self, callback: Callable[[ConversationKey], None]) -> None:
        return None


class AnsweringPipeline:
    """Answers a waiting turn by taking it off the waiting list, as a stored answer would."""

    def __init__(self, coordination: FakeCoordination) -> None:
        self.coordination = coordination
        self.answered: list[int] = []

    async def answer(self, target: ReplyTarget, conversation_id: int, user_turn_id: int) -> None:
        await asyncio.sleep(0)
        self.answered.append(user_turn_id)
        self.coordination.waiting = [
            w for w in self.coordination.waiting if w.user_turn_id != user_turn_id
        ]


def sharing(
    coordination: FakeCoordination,
) -> tuple[SharedAnswering, AnsweringPipeline, list[tuple[ReplyTarget, str]]]:
    told: list[tuple[ReplyTarget, str]] = []
    pipeline = AnsweringPipeline(coordination)
    shared = SharedAnswering(
        coordination=coordination,  # type: ignore[arg-type]
        lanes=ConversationLanes(),
        pipeline=pipeline,  # type: ignore[arg-type]
        tell=lambda target, text: told.append((target, text)),
    )
    return shared, pipeline, told


async def settle(lanes: ConversationLanes) -> None:
    async with asyncio.timeout(5):
        await asyncio.sleep(0.05)
        while lanes.active():
            await asyncio.sleep(0.01)


def waiting(turn_id: int, key: ConversationKey = KEY) -> WaitingTurn:
    return WaitingTurn(key, 1, turn_id, turn_id * 10)


async def test_the_holder_answers_every_waiting_turn_oldest_first() -> None:
    coordination = FakeCoordination()
    coordination.waiting = [waiting(5), waiting(3), waiting(4)]  # stored by several processes
    shared, pipeline, _ = sharing(coordination)
    await coordination.wake(KEY)
    await settle(shared.lanes)
    assert pipeline.answered == [3, 4, 5]
    assert coordination.held == set()


async def test_a_conversation_held_elsewhere_is_left_to_its_holder() -> None:
    coordination = FakeCoordination()
    coordination.waiting = [waiting(3)]
    coordination.elsewhere = {KEY}
    shared, pipeline, _ = sharing(coordination)
    await coordination.wake(KEY)
    await shared.sweep()
    await settle(shared.lanes)
    assert pipeline.answered == []
    assert coordination.waiting == [waiting(3)]


async def test_a_turn_stored_while_the_lease_was_held_is_answered_after_the_release() -> None:
    coordination = FakeCoordination()
    coordination.waiting = [waiting(3)]
    late = [waiting(9)]

    def another_process_stores_one_now() -> None:
        coordination.waiting.extend(late)
        late.clear()

    coordination.on_release = another_process_stores_one_now
    shared, pipeline, _ = sharing(coordination)
    await coordination.wake(KEY)
    await settle(shared.lanes)
    assert pipeline.answered == [3, 9]


async def test_an_answer_cut_by_a_gone_process_gets_one_notice_and_its_queue_is_answered() -> None:
    coordination = FakeCoordination()
    coordination.orphans = [PendingAnswer(KEY, 2, 3, (77,), 20, 1)]
    coordination.waiting = [waiting(4)]
    shared, pipeline, told = sharing(coordination)
    await shared.sweep()
    await shared.sweep()
    await settle(shared.lanes)
    assert told == [(ReplyTarget.for_stored(KEY, 77), RESTART_NOTICE)]
    assert pipeline.answered == [4]
