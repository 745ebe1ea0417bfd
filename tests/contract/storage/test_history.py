"""History for the model: whole turns within a character budget, newest media with bytes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import AnswerStatus, ConversationKey, NewAttachment, SQLiteStore, Store, store_for
from tests.databases import execute

KEY = ConversationKey(1)


@pytest.fixture
def attachment_cap() -> int:
    return 10_000


async def _exchange(
    store: Store,
    conversation: int,
    question: str,
    answer: str,
    status: AnswerStatus = AnswerStatus.COMPLETE,
    attachments: tuple[NewAttachment, ...] = (),
) -> int:
    user = await store.add_user_turn(
        conversation, text=question, chat_id=KEY.chat_id, message_id=None, attachments=attachments
    )
    assert user is not None
    reply = await store.start_answer(conversation, user)
    if status is not AnswerStatus.STREAMING:
        await store.finish_answer(reply, text=answer, status=status)
    return user


async def test_oldest_turns_are_dropped_whole_to_fit_the_budget(store: Store) -> None:
    conversation = await store.current_conversation(KEY)
    await _exchange(store, conversation, "a" * 40, "b" * 40)
    await _exchange(store, conversation, "c" * 30, "d" * 30)
    a, b, c, d = "a" * 40, "b" * 40, "c" * 30, "d" * 30
    for budget, expected in [
        (60, [c, d]),
        (99, [c, d]),
        (100, [b, c, d]),
        (139, [b, c, d]),
        (140, [a, b, c, d]),
    ]:
        turns = await store.history(conversation, char_budget=budget, media_limit=0)
        assert [t.text for t in turns] == expected, budget


async def test_the_newest_turn_is_kept_even_when_it_alone_exceeds_the_budget(
    store: Store,
) -> None:
    conversation = await store.current_conversation(KEY)
    await _exchange(store, conversation, "short", "reply")
    await store.add_user_turn(conversation, text="x" * 500, chat_id=1, message_id=None)
    turns = await store.history(conversation, char_budget=100, media_limit=0)
    assert [t.text for t in turns] == ["x" * 500]


async def test_the_system_prompt_is_not_a_turn_and_never_trimmed(store: Store) -> None:
    conversation = await store.current_conversation(KEY)
    prompt = "You are a careful assistant. " * 100
    await store.set_setting(KEY.chat_id, "system_prompt", prompt)
    await _exchange(store, conversation, "q" * 10, "r" * 10)
    turns = await store.history(conversation, char_budget=20, media_limit=0)
    assert [t.text for t in turns] == ["q" * 10, "r" * 10]
    assert await store.get_setting(KEY.chat_id, "system_prompt") == prompt


async def test_only_complete_and_stopped_answers_reach_the_model(store: Store) -> None:
    conversation = await store.current_conversation(KEY)
    await _exchange(store, conversation, "q1", "complete answer")
    await _exchange(store, conversation, "q2", "half an ans", AnswerStatus.STOPPED)
    await _exchange(store, conversation, "q3", "error text", AnswerStatus.FAILED)
    await _exchange(store, conversation, "q4", "", AnswerStatus.INTERRUPTED)
    replaced = await _exchange(store, conversation, "q5", "old answer")
    await store.replace_answers_after(replaced)
    await _exchange(store, conversation, "q6", "", AnswerStatus.STREAMING)
    turns = await store.history(conversation, char_budget=10_000, media_limit=0)
    assert [(t.role, t.text) for t in turns] == [
        ("user", "q1"),
        ("assistant", "complete answer"),
        ("user", "q2"),
        ("assistant", "half an ans"),
        ("user", "q3"),
        ("user", "q4"),
        ("user", "q5"),
        ("user", "q6"),
    ]


async def test_only_the_newest_attachments_carry_their_bytes(store: Store) -> None:
    conversation = await store.current_conversation(KEY)
    photos = [
        NewAttachment("image", "image/png", f"png {n}".encode(), f"{n}.png") for n in range(4)
    ]
    await _exchange(store, conversation, "first", "ok", attachments=(photos[0],))
    await _exchange(store, conversation, "two", "ok", attachments=(photos[1], photos[2]))
    voice = NewAttachment("audio", "audio/ogg", b"ogg", "v.ogg")
    await store.add_user_turn(
        conversation, text="last", chat_id=1, message_id=None, attachments=[photos[3], voice]
    )
    turns = await store.history(conversation, char_budget=10_000, media_limit=3)
    carried = [(a.filename, a.data is not None) for t in turns for a in t.attachments]
    assert carried == [
        ("0.png", False),
        ("1.png", True),
        ("2.png", False),
        ("3.png", True),
        ("v.ogg", True),
    ]
    assert turns[-1].attachments[1].kind == "audio"
    assert turns[-1].attachments[1].size == 3
    no_media = await store.history(conversation, char_budget=10_000, media_limit=0)
    assert all(a.data is None for t in no_media for a in t.attachments)


async def test_sender_names_and_times_come_back(store: Store) -> None:
    conversation = await store.current_conversation(KEY)
    before = time.time()
    await store.add_user_turn(conversation, text="hi", chat_id=1, message_id=1, sender_name="Ada")
    (turn,) = await store.history(conversation, char_budget=100, media_limit=0)
    assert turn.sender_name == "Ada"
    assert before - 1 <= turn.created_at.timestamp() <= time.time() + 1


async def test_a_long_conversation_is_read_back_a_few_pages_not_whole(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = await store.current_conversation(KEY)
    ten_thousand_turns = (
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999) "
        "INSERT INTO turns (conversation_id, role, text, created_at) "
        "SELECT ?, 'user', substr('00000000' || i, -9, 9), 1700000000.0 FROM n"
        if isinstance(store, SQLiteStore)
        else "INSERT INTO turns (conversation_id, role, text, created_at) "
        "SELECT ?, 'user', lpad(i::text, 9, '0'), now() FROM generate_series(0, 9999) i"
    )
    await execute(store_url, ten_thousand_turns, conversation)
    statements = await _record_statements(store, monkeypatch)
    turns = await store.history(conversation, char_budget=9 * 200, media_limit=2)
    assert [t.text for t in turns] == [f"{n:09d}" for n in range(9_800, 10_000)]
    reads = [s for s in statements if "FROM turns WHERE conversation_id" in s]
    assert 1 <= len(reads) <= 3
    assert all("LIMIT" in s for s in reads)


async def _record_statements(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every query the store sends from now on: SQLite's trace callback, or asyncpg's
    `fetch` wrapped."""
    statements: list[str] = []
    if isinstance(store, SQLiteStore):
        db = store._db
        assert db is not None
        await db.set_trace_callback(statements.append)
        return statements
    fetch = asyncpg.Connection.fetch

    async def recording(self: asyncpg.Connection, query: str, *args: Any, **kw: Any) -> Any:
        statements.append(query)
        return await fetch(self, query, *args, **kw)

    monkeypatch.setattr(asyncpg.Connection, "fetch", recording)
    return statements


def _expected(turns: list[tuple[str, int]], budget: int) -> list[str]:
    """The rule, written plainly: visible turns, newest first, while they fit."""
    visible = [f"{n}:" + "x" * length for n, (kind, length) in enumerate(turns) if kind != "failed"]
    kept: list[str] = []
    for text in reversed(visible):
        if kept and sum(map(len, kept)) + len(text) > budget:
            break
        kept.append(text)
    return kept[::-1]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    turns=st.lists(
        st.tuples(st.sampled_from(["user", "complete", "failed"]), st.integers(0, 60)),
        max_size=80,
    ),
    budget=st.integers(0, 1500),
)
def test_trimming_matches_the_rule_for_any_conversation(
    store_url: str, turns: list[tuple[str, int]], budget: int
) -> None:
    if turns:
        turns[0] = ("user", turns[0][1])  # an answer needs a question before it

    async def run() -> list[str]:
        store = store_for(store_url, max_attachment_bytes=1)
        await store.open()
        try:
            conversation = await store.new_conversation(KEY)  # one per example, same database
            last_user: int | None = None
            for n, (kind, length) in enumerate(turns):
                text = f"{n}:" + "x" * length
                if kind == "user":
                    last_user = await store.add_user_turn(
                        conversation, text=text, chat_id=1, message_id=None
                    )
                    continue
                assert last_user is not None
                answer = await store.start_answer(conversation, last_user)
                status = AnswerStatus.COMPLETE if kind == "complete" else AnswerStatus.FAILED
                await store.finish_answer(answer, text=text, status=status)
            history = await store.history(conversation, char_budget=budget, media_limit=0)
            return [t.text for t in history]
        finally:
            await store.close()

    assert asyncio.run(run()) == _expected(turns, budget)


async def test_history_for_an_earlier_turn_leaves_out_the_turns_stored_after_it(
    store: Store,
) -> None:
    conversation = await store.current_conversation(ConversationKey(1))
    first = await store.add_user_turn(conversation, text="first", chat_id=1, message_id=1)
    await store.add_user_turn(conversation, text="second", chat_id=1, message_id=2)
    assert first is not None
    history = await store.history(
        conversation, char_budget=1000, media_limit=3, until_turn_id=first
    )
    assert [turn.text for turn in history] == ["first"]
    everything = await store.history(conversation, char_budget=1000, media_limit=3)
    assert [turn.text for turn in everything] == ["first", "second"]


async def test_the_newest_turn_keeps_every_attachment_past_the_media_limit(store: Store) -> None:
    conversation = await store.current_conversation(KEY)
    old = NewAttachment("image", "image/png", b"old photo", "old.png")
    await _exchange(store, conversation, "first", "ok", attachments=(old,))
    frames = [
        NewAttachment("image", "image/jpeg", f"frame {n}".encode(), f"f{n}.jpg") for n in range(5)
    ]
    await store.add_user_turn(
        conversation, text="video", chat_id=1, message_id=None, attachments=frames
    )
    turns = await store.history(conversation, char_budget=10_000, media_limit=3)
    carried = [(a.filename, a.data is not None) for t in turns for a in t.attachments]
    assert carried == [("old.png", False)] + [(f"f{n}.jpg", True) for n in range(5)]
