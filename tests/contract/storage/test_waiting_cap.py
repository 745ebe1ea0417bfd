"""The cap on one person's waiting messages, counted in the database: it holds however many
processes store that person's messages, and counts the way a lane in memory does."""

from __future__ import annotations

import asyncio
import time
import types

import pytest

import storage.conversations
from storage import AnswerStatus, ConversationKey, RecordedTurn, Store, TooManyWaiting
from storage.recovery import RECENT_SECONDS
from tests.databases import opened_store, scalar

KEY = ConversationKey(1)
ALICE, BOB = 7, 8


async def _send(
    store: Store, message_id: int, sender: int = ALICE, key: ConversationKey = KEY, cap: int = 1
) -> RecordedTurn | None:
    return await store.record_user_turn(
        key,
        text=f"m{message_id}",
        chat_id=key.chat_id,
        message_id=message_id,
        sender_id=sender,
        max_waiting=cap,
    )


async def _stored(store: Store, message_id: int, sender: int = ALICE) -> RecordedTurn:
    recorded = await _send(store, message_id, sender)
    assert recorded is not None
    return recorded


async def _user_turns(url: str) -> int:
    return int(await scalar(url, "SELECT count(*) FROM turns WHERE role = 'user'"))


async def test_one_waiting_message_per_person_beside_the_one_being_answered(
    store: Store, store_url: str
) -> None:
    first = await _stored(store, 1)  # to be answered next: not waiting
    second = await _stored(store, 2)  # waits behind it
    with pytest.raises(TooManyWaiting) as refused:
        await _send(store, 3)
    assert (refused.value.waiting, refused.value.limit) == (1, 1)
    assert await _user_turns(store_url) == 2, "a refused message is not stored"

    answer = await store.start_answer(first.conversation_id, first.user_turn_id)
    with pytest.raises(TooManyWaiting):
        await _send(store, 4)  # the second still waits while the first is answered
    await _stored(store, 5, BOB)  # someone else in the same chat has their own cap

    await store.finish_answer(answer, text="done", status=AnswerStatus.COMPLETE)
    await store.start_answer(second.conversation_id, second.user_turn_id)
    await _stored(store, 6)  # the second is being answered now: room for one again


async def test_without_a_cap_every_message_is_stored(store: Store, store_url: str) -> None:
    for message_id in range(1, 5):
        await store.record_user_turn(
            KEY, text="again", chat_id=1, message_id=message_id, sender_id=ALICE
        )
    assert await _user_turns(store_url) == 4


async def test_a_message_delivered_again_is_found_not_refused(store: Store) -> None:
    await _stored(store, 1)
    await _stored(store, 2)
    assert await _send(store, 2) is None  # Telegram delivered it twice: stored once


async def test_each_topic_and_chat_has_its_own_cap(store: Store) -> None:
    await _stored(store, 1)
    await _stored(store, 2)
    topic = ConversationKey(1, 9)
    assert await _send(store, 3, key=topic) is not None
    assert await _send(store, 4, key=topic) is not None
    assert await _send(store, 5, key=ConversationKey(2)) is not None


async def test_a_message_left_unanswered_for_a_day_holds_nobody_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_ago = types.SimpleNamespace(time=lambda: time.time() - RECENT_SECONDS - 60)
    with monkeypatch.context() as past:
        past.setattr(storage.conversations, "time", long_ago)
        await _stored(store, 1)
        await _stored(store, 2)
    await _stored(store, 3)
    await _stored(store, 4)


async def test_a_larger_cap_lets_that_many_wait(store: Store) -> None:
    for message_id in range(1, 4):  # one in hand, two waiting
        assert await _send(store, message_id, cap=2) is not None
    with pytest.raises(TooManyWaiting):
        await _send(store, 4, cap=2)


async def test_two_processes_storing_at_once_stay_within_the_cap(store_url: str) -> None:
    """Twenty messages of one person reach two processes at the same moment: one is in
    hand and one waits; every other is refused, however the stores interleave."""
    async with opened_store(store_url) as first, opened_store(store_url) as second:
        results = await asyncio.gather(
            *(_send(first if n % 2 else second, n) for n in range(1, 21)),
            return_exceptions=True,
        )
    stored = [r for r in results if isinstance(r, RecordedTurn)]
    refused = [r for r in results if isinstance(r, TooManyWaiting)]
    assert (len(stored), len(refused)) == (2, 18), results
    assert await _user_turns(store_url) == 2
