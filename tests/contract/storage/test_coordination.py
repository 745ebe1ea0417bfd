"""Processes sharing one PostgreSQL database: leases, waiting turns, and answers of live
processes left alone by another's recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from storage import ConversationKey, Coordination, StorageError, Store, WaitingTurn
from storage.postgres.locks import LockNamespace
from tests.databases import execute, opened_store

KEY = ConversationKey(-100, 4)


@asynccontextmanager
async def process(url: str) -> AsyncIterator[tuple[Store, Coordination]]:
    """A store and its coordination, as one `phi4bot run` process holds them."""
    async with opened_store(url, max_attachment_bytes=10) as store:
        coordination = store.coordination()
        await coordination.open(on_lost=lambda: None)
        try:
            yield store, coordination
        finally:
            await coordination.close()


async def test_an_answer_a_live_process_is_writing_is_not_interrupted_by_another(
    postgres_url: str,
) -> None:
    async with process(postgres_url) as (live, _):
        conversation = await live.current_conversation(KEY)
        user = await live.add_user_turn(conversation, text="tell me", chat_id=-100, message_id=1)
        assert user is not None
        answer = await live.start_answer(conversation, user)
        async with process(postgres_url) as (starting, coordination):
            assert await starting.unfinished_answers() == []
            assert await coordination.orphaned_answers() == []
            assert await coordination.live_instances() == 2
        # The live process goes away: its answer is now an orphan, reported once.
    async with process(postgres_url) as (_, coordination):
        async with asyncio.timeout(5):  # the server ends a closed session in a moment
            while not (orphans := await coordination.orphaned_answers()):
                await asyncio.sleep(0.05)
        (orphan,) = orphans
        assert (orphan.user_turn_id, orphan.assistant_turn_id) == (user, answer)
        assert await coordination.orphaned_answers() == []


async def test_one_process_at_a_time_holds_a_chat_and_its_death_frees_it(
    postgres_url: str,
) -> None:
    async with process(postgres_url) as (_, first):
        async with process(postgres_url) as (_, second):
            assert await first.claim(KEY)
            assert not await second.claim(KEY)
            # A group's topics go together (one pace per group); another chat is free.
            assert not await second.claim(ConversationKey(-100, 5))
            assert await second.claim(ConversationKey(-200))
            assert await first.claim(ConversationKey(-100, 5))
            await first.release(ConversationKey(-100, 5))
            assert first.holds(KEY) and not await second.claim(KEY)
            assert await first.try_lead()
            assert not await second.try_lead()
            await first.release(KEY)
            assert await second.claim(KEY)
            assert not await first.claim(KEY)
        async with asyncio.timeout(5):  # the second process closed: its leases are free
            while not await first.claim(KEY):
                await asyncio.sleep(0.05)
        assert await first.try_lead()


async def test_waiting_turns_are_found_oldest_first_and_held_ones_are_left_out(
    postgres_url: str,
) -> None:
    async with process(postgres_url) as (store, first), process(postgres_url) as (_, second):
        woken: list[ConversationKey] = []
        second.on_wake(woken.append)
        conversation = await store.current_conversation(KEY)
        one = await store.add_user_turn(conversation, text="one", chat_id=-100, message_id=1)
        two = await store.add_user_turn(conversation, text="two", chat_id=-100, message_id=2)
        assert one is not None and two is not None
        assert await second.next_waiting(KEY) == WaitingTurn(KEY, conversation, one, 1)
        assert await second.waiting_conversations() == [KEY]
        answer = await store.start_answer(conversation, one)
        assert await second.next_waiting(KEY) == WaitingTurn(KEY, conversation, two, 2)
        assert await first.claim(KEY)
        assert await second.waiting_conversations() == []
        await first.wake(KEY)
        async with asyncio.timeout(5):
            while not woken:
                await asyncio.sleep(0.01)
        assert woken == [KEY]
        assert answer > one


async def test_stop_reaches_the_process_writing_the_answer(postgres_url: str) -> None:
    async with process(postgres_url) as (store, writer), process(postgres_url) as (_, other):
        stopped: list[ConversationKey] = []
        writer.on_stop(stopped.append)
        assert not await other.stop_elsewhere(KEY)  # nothing is being written
        conversation = await store.current_conversation(KEY)
        user = await store.add_user_turn(conversation, text="go on", chat_id=-100, message_id=1)
        assert user is not None
        await store.start_answer(conversation, user)
        assert not await writer.stop_elsewhere(KEY)  # its own answer is not elsewhere
        assert await other.stop_elsewhere(KEY)
        async with asyncio.timeout(5):
            while not stopped:
                await asyncio.sleep(0.01)
        assert stopped == [KEY]


async def test_a_lost_coordination_connection_is_reported_and_comes_back(
    postgres_url: str,
) -> None:
    lost = asyncio.Event()
    async with opened_store(postgres_url, max_attachment_bytes=10) as store:
        coordination = store.coordination()
        await coordination.open(on_lost=lost.set)
        try:
            assert await coordination.claim(KEY)
            await execute(
                postgres_url,
                # this database's only: other test sessions on the server hold such locks too
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                f"AND classid = {int(LockNamespace.INSTANCE)} AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            async with asyncio.timeout(10):
                await lost.wait()
            assert not coordination.holds(KEY)
            async with asyncio.timeout(10):  # reconnected: it may claim again
                while not await coordination.claim(KEY):
                    await asyncio.sleep(0.1)
            assert await coordination.live_instances() == 1
        finally:
            await coordination.close()


async def test_two_processes_given_one_instance_id_are_told_so(postgres_url: str) -> None:
    async with (
        opened_store(postgres_url, max_attachment_bytes=10) as first,
        opened_store(postgres_url, max_attachment_bytes=10) as second,
    ):
        one, other = first.coordination(), second.coordination()
        other.instance_id = one.instance_id
        await one.open(on_lost=lambda: None)
        try:
            with pytest.raises(StorageError, match="PHI4BOT_INSTANCE_ID"):
                await other.open(on_lost=lambda: None)
        finally:
            await one.close()
