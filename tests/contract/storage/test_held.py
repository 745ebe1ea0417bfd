"""Held messages: kept until released, found by the next process, on both engines."""

from __future__ import annotations

import time

from storage import HeldMessage, Store


async def test_held_messages_are_kept_until_released_and_found_oldest_first(
    store: Store,
) -> None:
    await store.hold_message(-100, 7, '{"message_id": 7}')
    await store.hold_message(42, 3, '{"message_id": 3}')
    await store.hold_message(-100, 8, '{"message_id": 8}')
    now = time.time() + 1
    assert await store.held_messages(now) == [
        HeldMessage(-100, 7, '{"message_id": 7}'),
        HeldMessage(42, 3, '{"message_id": 3}'),
        HeldMessage(-100, 8, '{"message_id": 8}'),
    ]
    await store.release_held(-100, [7, 8])
    assert await store.held_messages(now) == [HeldMessage(42, 3, '{"message_id": 3}')]


async def test_only_messages_held_before_the_moment_asked_are_found(store: Store) -> None:
    await store.hold_message(42, 3, '{"message_id": 3}')
    assert await store.held_messages(time.time() - 60) == []


async def test_a_message_held_twice_is_kept_once_as_first_held(store: Store) -> None:
    await store.hold_message(42, 3, '{"message_id": 3, "first": true}')
    await store.hold_message(42, 3, '{"message_id": 3}')
    assert await store.held_messages(time.time() + 1) == [
        HeldMessage(42, 3, '{"message_id": 3, "first": true}')
    ]
    await store.release_held(42, [3, 4])  # one never held: nothing to forget
    assert await store.held_messages(time.time() + 1) == []
