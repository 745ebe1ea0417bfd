"""Concurrency: hundreds of simultaneous appends lose nothing and keep their order.

On SQLite one connection serves every call in the order it was made; on PostgreSQL calls run
in parallel on pooled connections, so turns land in the order they commit: the tests ask of
each engine what it promises, and of both that nothing is lost or stored twice.
"""

from __future__ import annotations

import asyncio

from storage import AnswerStatus, ConversationKey, NewAttachment, SQLiteStore, Store
from tests.databases import opened_store


async def _exchange(store: Store, key: ConversationKey, n: int) -> tuple[int, int]:
    """One message and its answer, as the bot does them; every other one carries a photo
    (half of those the same photo), so transactions and single statements interleave."""
    conversation = await store.current_conversation(key)
    photos = [NewAttachment("image", "image/png", f"png {n % 4}".encode(), f"{n}.png")]
    user = await store.add_user_turn(
        conversation,
        text=f"q{n}",
        chat_id=key.chat_id,
        message_id=n,
        attachments=photos if n % 2 else (),
    )
    assert user is not None
    answer = await store.start_answer(conversation, user)
    await store.finish_answer(answer, text=f"a{n}", status=AnswerStatus.COMPLETE, message_ids=[n])
    return user, answer


async def test_200_concurrent_exchanges_in_one_conversation(store: Store) -> None:
    key = ConversationKey(1)
    results = await asyncio.gather(*(_exchange(store, key, n) for n in range(200)))
    users = [user for user, _ in results]
    turns = (await store.export_conversation(await store.current_conversation(key)))["turns"]
    assert len(turns) == 400
    questions = [t["text"] for t in turns if t["role"] == "user"]
    if isinstance(store, SQLiteStore):
        assert users == sorted(users), "appends landed out of call order"
        assert questions == [f"q{n}" for n in range(200)]
    else:
        assert sorted(questions) == sorted(f"q{n}" for n in range(200))
    by_id = {t["id"]: t for t in turns}
    for n, (user, answer) in enumerate(results):
        assert by_id[answer]["reply_to"] == user
        assert by_id[answer]["text"] == f"a{n}"
        assert len(by_id[user]["attachments"]) == n % 2
    conversation = await store.current_conversation(key)
    history = await store.history(conversation, char_budget=10_000, media_limit=200)
    assert len(history) == 400
    assert {a.data for t in history for a in t.attachments} == {b"png 1", b"png 3"}


async def test_200_concurrent_exchanges_across_many_conversations(store: Store) -> None:
    keys = [ConversationKey(chat, thread) for chat in range(10) for thread in (None, 7)]
    results = await asyncio.gather(*(_exchange(store, keys[n % len(keys)], n) for n in range(200)))
    assert len({user for user, _ in results}) == 200
    for index, key in enumerate(keys):
        conversation = await store.current_conversation(key)
        turns = await store.history(conversation, char_budget=10_000, media_limit=0)
        expected = [n for n in range(200) if n % len(keys) == index]
        questions = [t.text for t in turns if t.role == "user"]
        if isinstance(store, SQLiteStore):
            assert questions == [f"q{n}" for n in expected]
        else:
            assert sorted(questions) == sorted(f"q{n}" for n in expected)
        position = {t.text: i for i, t in enumerate(turns)}
        assert all(position[f"q{n}"] < position[f"a{n}"] for n in expected)
    stats = await store.chat_stats()
    assert sum(s.user_turns for s in stats) == 200
    assert sum(s.conversations for s in stats) == len(keys)


async def test_a_message_delivered_many_times_at_once_is_stored_once(store: Store) -> None:
    conversation = await store.current_conversation(ConversationKey(1))
    results = await asyncio.gather(
        *(
            store.add_user_turn(conversation, text=f"m{n % 50}", chat_id=1, message_id=n % 50)
            for n in range(200)
        )
    )
    stored = [turn for turn in results if turn is not None]
    assert len(stored) == 50
    for message_id in range(50):
        deliveries = results[message_id::50]
        assert sum(turn is not None for turn in deliveries) == 1, message_id
    if isinstance(store, SQLiteStore):
        assert results[:50] == stored


async def test_two_stores_on_one_database_wait_for_each_other(store_url: str) -> None:
    async with opened_store(store_url) as first, opened_store(store_url) as second:
        await asyncio.gather(
            *(_exchange(first, ConversationKey(1), n) for n in range(0, 200, 2)),
            *(_exchange(second, ConversationKey(2), n) for n in range(1, 200, 2)),
        )
        stats = await first.chat_stats()
    assert [(s.chat_id, s.user_turns, s.assistant_turns) for s in stats] == [
        (1, 100, 100),
        (2, 100, 100),
    ]


async def test_two_processes_sharing_one_conversation_store_each_message_once(
    store_url: str,
) -> None:
    """As two bot processes behind one webhook would: both receive every message (a retried
    delivery), both look up the chat's conversation at once, both append."""
    async with opened_store(store_url) as one, opened_store(store_url) as two:
        stores = [one, two]
        key = ConversationKey(-100, 5)
        conversations = await asyncio.gather(
            *(s.current_conversation(key) for s in stores for _ in range(20))
        )
        assert len(set(conversations)) == 1
        conversation = conversations[0]
        photo = NewAttachment("image", "image/png", b"the same photo", "p.png")
        results = await asyncio.gather(
            *(
                s.add_user_turn(
                    conversation,
                    text=f"m{n}",
                    chat_id=-100,
                    message_id=n,
                    attachments=[photo] if n % 3 == 0 else (),
                )
                for n in range(100)
                for s in stores
            )
        )
        assert sum(turn is not None for turn in results) == 100
        history = await stores[0].history(conversation, char_budget=10_000, media_limit=100)
        assert sorted(t.text for t in history) == sorted(f"m{n}" for n in range(100))
        assert [t.turn_id for t in history] == sorted(t.turn_id for t in history)
        stats = await stores[1].chat_stats()
        assert [(s.chat_id, s.conversations, s.user_turns) for s in stats] == [(-100, 1, 100)]
