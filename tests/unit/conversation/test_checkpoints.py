"""The checkpoint writer, in virtual time: a new message is saved at the next tick, text alone
at most every 2 s, every answer due in one store call, nothing for an answer unchanged or
forgotten."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from itertools import pairwise
from typing import cast

import pytest

from bot.conversation.checkpoints import TEXT_EVERY, TICK, CheckpointWriter
from storage import AnswerCheckpoint, Store
from tests.fake_clock import FakeClock

pytestmark = pytest.mark.virtual_time


class View:
    """The two things the writer reads of an answer being shown."""

    def __init__(self) -> None:
        self.text = ""
        self.message_ids: list[int] = []


class CheckpointStore:
    """Remembers each `update_answers` call with the virtual time it was made at."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[float, list[AnswerCheckpoint]]] = []
        self.failures = 0

    async def update_answers(self, checkpoints: list[AnswerCheckpoint]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database is locked")
        self.calls.append((self.clock.now(), list(checkpoints)))

    def saved(self) -> list[AnswerCheckpoint]:
        return [checkpoint for _, batch in self.calls for checkpoint in batch]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> CheckpointStore:
    return CheckpointStore(clock)


@pytest.fixture
async def writer(clock: FakeClock, store: CheckpointStore) -> AsyncIterator[CheckpointWriter]:
    started = CheckpointWriter(cast(Store, store), clock=clock.now, sleep=clock.sleep)
    started.start()
    yield started
    await started.close()


async def test_a_new_message_is_saved_at_the_next_tick(
    clock: FakeClock, store: CheckpointStore, writer: CheckpointWriter
) -> None:
    view = View()
    writer.watch(7, view)
    await clock.run_for(TICK * 3)
    assert store.calls == [], "nothing shown yet, nothing to save"
    view.text, view.message_ids = "Once", [100]
    began = clock.now()
    await clock.run_for(TICK)
    assert store.saved() == [AnswerCheckpoint(7, "Once", (100,))]
    assert store.calls[0][0] - began <= TICK


async def test_a_later_message_is_saved_at_the_next_tick_too(
    clock: FakeClock, store: CheckpointStore, writer: CheckpointWriter
) -> None:
    view = View()
    writer.watch(7, view)
    view.text, view.message_ids = "a" * 4096, [100]
    await clock.run_for(TICK)
    view.text, view.message_ids = "a" * 4100, [100, 101]
    await clock.run_for(TICK)
    assert store.saved()[-1] == AnswerCheckpoint(7, "a" * 4100, (100, 101))
    assert len(store.calls) == 2


async def test_text_alone_is_saved_at_most_every_two_seconds(
    clock: FakeClock, store: CheckpointStore, writer: CheckpointWriter
) -> None:
    view = View()
    writer.watch(7, view)
    view.text, view.message_ids = "w", [100]
    await clock.run_for(TICK)
    for _ in range(100):  # ten seconds of text arriving every 0.1 s
        view.text += " w"
        await clock.run_for(0.1)
    times = [at for at, _ in store.calls]
    assert 5 <= len(times) <= 6
    assert all(later - earlier >= TEXT_EVERY for earlier, later in pairwise(times))
    assert store.saved()[-1].text != store.saved()[-2].text


async def test_an_answer_that_did_not_change_is_not_written_again(
    clock: FakeClock, store: CheckpointStore, writer: CheckpointWriter
) -> None:
    view = View()
    writer.watch(7, view)
    view.text, view.message_ids = "Paused here", [100]
    await clock.run_for(TICK)
    await clock.run_for(TEXT_EVERY * 5)
    assert len(store.calls) == 1


async def test_every_answer_due_is_saved_by_one_store_call_per_tick(
    clock: FakeClock, store: CheckpointStore, writer: CheckpointWriter
) -> None:
    views = {answer_id: View() for answer_id in range(1000)}
    for answer_id, view in views.items():
        writer.watch(answer_id, view)
    for answer_id, view in views.items():
        view.text, view.message_ids = f"answer {answer_id}", [answer_id]
    await clock.run_for(TICK)
    assert len(store.calls) == 1
    assert {c.answer_id for c in store.calls[0][1]} == set(views)
    for view in views.values():
        view.text += " and more"
    await clock.run_for(TEXT_EVERY + TICK)
    assert len(store.calls) == 2, "the text of all of them, in one call again"
    assert len(store.calls[1][1]) == 1000


async def test_nothing_is_saved_for_an_answer_once_forgotten(
    clock: FakeClock, store: CheckpointStore, writer: CheckpointWriter
) -> None:
    view, other = View(), View()
    writer.watch(7, view)
    writer.watch(8, other)
    view.text, view.message_ids = "Done", [100]
    writer.forget(7)
    other.text, other.message_ids = "Going", [200]
    await clock.run_for(TEXT_EVERY * 2)
    assert store.saved() == [AnswerCheckpoint(8, "Going", (200,))]


async def test_a_failed_write_is_tried_again_at_the_next_tick(
    clock: FakeClock, store: CheckpointStore, writer: CheckpointWriter
) -> None:
    view = View()
    writer.watch(7, view)
    store.failures = 2
    view.text, view.message_ids = "Once", [100]
    await clock.run_for(TICK * 3.5)
    assert store.saved() == [AnswerCheckpoint(7, "Once", (100,))]


async def test_closing_saves_what_changed_once_more_then_stops(
    clock: FakeClock, store: CheckpointStore
) -> None:
    writer = CheckpointWriter(cast(Store, store), clock=clock.now, sleep=clock.sleep)
    writer.start()
    view, unchanged = View(), View()
    writer.watch(7, view)
    writer.watch(8, unchanged)
    view.text, view.message_ids = "Once", [100]
    unchanged.text, unchanged.message_ids = "Still", [200]
    await clock.run_for(TICK)
    view.text = "Once upon a time"
    await writer.close()
    assert store.calls[-1][1] == [AnswerCheckpoint(7, "Once upon a time", (100,))]
    calls = len(store.calls)
    view.message_ids = [100, 101]
    await clock.run_for(TEXT_EVERY * 2)
    assert len(store.calls) == calls
    await writer.close()


async def test_an_answer_watched_while_a_batch_is_written_waits_for_the_next_tick(
    clock: FakeClock, store: CheckpointStore, writer: CheckpointWriter
) -> None:
    gate = asyncio.Event()
    update = store.update_answers

    async def slow(checkpoints: list[AnswerCheckpoint]) -> None:
        await gate.wait()
        await update(checkpoints)

    store.update_answers = slow  # type: ignore[method-assign]
    first, second = View(), View()
    writer.watch(1, first)
    first.text, first.message_ids = "one", [10]
    await clock.run_for(TICK)  # the batch with answer 1 is on its way
    writer.watch(2, second)
    second.text, second.message_ids = "two", [20]
    gate.set()
    await clock.run_for(TICK)
    assert [[c.answer_id for c in batch] for _, batch in store.calls] == [[1], [2]]


async def test_a_flush_saves_text_that_grew_at_once_without_waiting_for_its_timer(
    clock: FakeClock, store: CheckpointStore, writer: CheckpointWriter
) -> None:
    view = View()
    writer.watch(7, view)
    view.text, view.message_ids = "first", [100]
    await clock.run_for(TICK)
    view.text = "first words, and more since"
    started = clock.now()
    await writer.flush()  # at shutdown: the text so far is stored before anything else
    assert clock.now() == started
    assert store.saved()[-1] == AnswerCheckpoint(7, "first words, and more since", (100,))
    await writer.flush()
    assert len(store.calls) == 2, "an answer that did not change since is not written again"
