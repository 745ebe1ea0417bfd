"""Conversation lanes: one turn at a time per conversation, conversations in parallel."""

from __future__ import annotations

import asyncio

import pytest

from bot.conversation.errors import QueueFull
from bot.conversation.lanes import ConversationLanes, StopReason
from storage import ConversationKey

A = ConversationKey(1)
B = ConversationKey(2)


async def _wait(condition, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_turns_of_one_conversation_run_in_arrival_order_one_at_a_time() -> None:
    lanes = ConversationLanes(max_queued_per_user=0)
    log: list[str] = []
    running = 0

    def job(name: str):
        async def run() -> None:
            nonlocal running
            running += 1
            assert running == 1
            log.append(f"start {name}")
            await asyncio.sleep(0.01)
            log.append(f"end {name}")
            running -= 1

        return run

    for name in "abc":
        lanes.submit(A, job(name))
    await _wait(lambda: len(log) == 6)
    assert log == ["start a", "end a", "start b", "end b", "start c", "end c"]
    await _wait(lambda: not lanes.busy(A))


async def test_a_slow_conversation_does_not_delay_another() -> None:
    lanes = ConversationLanes()
    release = asyncio.Event()
    done: list[str] = []

    async def slow() -> None:
        await release.wait()
        done.append("slow")

    async def fast() -> None:
        done.append("fast")

    lanes.submit(A, slow)
    lanes.submit(B, fast)
    await _wait(lambda: done == ["fast"])
    release.set()
    await _wait(lambda: done == ["fast", "slow"])


async def test_one_waiting_turn_per_user_beyond_the_running_one() -> None:
    lanes = ConversationLanes(max_queued_per_user=1)
    release = asyncio.Event()

    async def blocked() -> None:
        await release.wait()

    lanes.submit(A, blocked, user_id=7)
    await asyncio.sleep(0)  # the first job starts running
    lanes.submit(A, blocked, user_id=7)
    with pytest.raises(QueueFull):
        lanes.submit(A, blocked, user_id=7)
    lanes.submit(A, blocked, user_id=8)  # another user of the same group may queue
    release.set()
    await _wait(lambda: not lanes.busy(A))


async def test_stop_cancels_only_the_registered_generation() -> None:
    lanes = ConversationLanes()
    outcome: list[str] = []

    async def job() -> None:
        generation = asyncio.create_task(asyncio.sleep(10))
        lanes.set_generation(A, generation)
        try:
            await generation
        except asyncio.CancelledError:
            outcome.append(f"stopped:{lanes.stop_reason(A)}")
        lanes.set_generation(A, None)

    lanes.submit(A, job)
    await _wait(lambda: lanes.stop(A))
    await _wait(lambda: outcome == [f"stopped:{StopReason.USER}"])
    assert lanes.stop(A) is False


async def test_shutdown_stops_generations_and_refuses_new_work() -> None:
    lanes = ConversationLanes()
    outcome: list[str] = []

    async def job() -> None:
        generation = asyncio.create_task(asyncio.sleep(10))
        lanes.set_generation(A, generation)
        try:
            await generation
        except asyncio.CancelledError:
            outcome.append(str(lanes.stop_reason(A)))

    lanes.submit(A, job)
    await asyncio.sleep(0.01)
    await lanes.shutdown(timeout=2.0)
    assert outcome == [str(StopReason.SHUTDOWN)]
    with pytest.raises(QueueFull):
        lanes.submit(B, job)


async def test_an_answer_starting_after_the_close_is_stopped_at_once() -> None:
    lanes = ConversationLanes()
    reasons: list[StopReason | None] = []
    reached = asyncio.Event()
    go_on = asyncio.Event()

    async def job() -> None:
        reached.set()
        await go_on.wait()  # still reading its history when SIGTERM comes
        generation = asyncio.create_task(asyncio.sleep(10))
        lanes.set_generation(A, generation)
        try:
            await generation
        except asyncio.CancelledError:
            reasons.append(lanes.stop_reason(A))

    lanes.submit(A, job)
    await reached.wait()
    lanes.close()
    go_on.set()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await lanes.drain(started + 5.0)
    assert reasons == [StopReason.SHUTDOWN]
    assert loop.time() - started < 1.0
