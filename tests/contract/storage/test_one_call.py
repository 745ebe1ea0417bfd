"""Operations that do in one store call what a turn would otherwise queue several calls for:
recording an arriving message, reading what the prompt needs, saving many checkpoints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from storage import (
    AnswerCheckpoint,
    AnswerStatus,
    AttachmentTooLarge,
    ConversationKey,
    NewAttachment,
    RecordedTurn,
    SQLiteStore,
    Store,
)
from tests.databases import fetch_all, opened_store, scalar

CAP = 1000  # the `attachment_cap` fixture's default
KEY = ConversationKey(1)
PHOTO = NewAttachment("image", "image/png", b"\x89PNG bytes", "cat.png", "file-1")


async def _record(
    store: Store, key: ConversationKey, message_id: int | None, text: str = "hi"
) -> RecordedTurn:
    recorded = await store.record_user_turn(
        key, text=text, chat_id=key.chat_id, message_id=message_id
    )
    assert recorded is not None
    return recorded


# -- recording an arriving turn -----------------------------------------------------------


async def test_the_first_message_creates_the_conversation_later_ones_join_it(
    store: Store,
) -> None:
    first = await _record(store, KEY, 1)
    second = await _record(store, KEY, 2)
    assert first.conversation_id == second.conversation_id
    assert await store.current_conversation(KEY) == first.conversation_id
    assert second.user_turn_id > first.user_turn_id
    topic = await _record(store, ConversationKey(1, 9), 3)
    other = await _record(store, ConversationKey(2), 1)
    assert len({first.conversation_id, topic.conversation_id, other.conversation_id}) == 3


async def test_a_recorded_turn_lands_in_the_conversation_new_made_current(store: Store) -> None:
    old = await _record(store, KEY, 1, "before")
    fresh = await store.new_conversation(KEY)
    after = await _record(store, KEY, 2, "after")
    assert after.conversation_id == fresh != old.conversation_id
    history = await store.history(fresh, char_budget=100, media_limit=0)
    assert [t.text for t in history] == ["after"]


async def test_a_recorded_turn_keeps_its_sender_and_message(store: Store) -> None:
    recorded = await store.record_user_turn(
        KEY, text="hello", chat_id=1, message_id=10, sender_id=500, sender_name="Ada"
    )
    assert recorded is not None
    turn = (await store.export_conversation(recorded.conversation_id))["turns"][0]
    assert turn["id"] == recorded.user_turn_id
    assert (turn["text"], turn["message_id"]) == ("hello", 10)
    assert turn["sender"] == {"id": 500, "name": "Ada"}


async def test_a_message_recorded_twice_is_stored_once(store: Store, store_url: str) -> None:
    assert await store.record_user_turn(KEY, text="hi", chat_id=1, message_id=77) is not None
    assert await store.record_user_turn(KEY, text="hi", chat_id=1, message_id=77) is None
    photo_again = await store.record_user_turn(
        KEY, text="", chat_id=1, message_id=77, attachments=[PHOTO]
    )
    assert photo_again is None
    assert await store.record_user_turn(KEY, text="hi", chat_id=2, message_id=77) is not None
    assert await scalar(store_url, "SELECT count(*) FROM turns") == 2
    assert await scalar(store_url, "SELECT count(*) FROM attachments") == 0


async def test_a_message_stored_by_add_user_turn_is_not_recorded_again(store: Store) -> None:
    conversation = await store.current_conversation(KEY)
    assert await store.add_user_turn(conversation, text="hi", chat_id=1, message_id=5)
    assert await store.record_user_turn(KEY, text="hi", chat_id=1, message_id=5) is None


async def test_turns_without_message_id_are_always_recorded(store: Store) -> None:
    a = await _record(store, KEY, None)
    b = await _record(store, KEY, None)
    assert a.user_turn_id != b.user_turn_id


async def test_a_turn_with_media_is_recorded_with_its_attachments(store: Store) -> None:
    recorded = await store.record_user_turn(
        KEY, text="look", chat_id=1, message_id=1, attachments=[PHOTO, PHOTO]
    )
    assert recorded is not None
    assert recorded.conversation_id == await store.current_conversation(KEY)
    (turn,) = await store.history(recorded.conversation_id, char_budget=100, media_limit=5)
    assert turn.turn_id == recorded.user_turn_id
    assert [a.data for a in turn.attachments] == [PHOTO.data, PHOTO.data]
    assert turn.attachments[0].telegram_file_id == "file-1"


async def test_an_attachment_over_the_cap_is_refused_before_anything_is_written(
    store: Store, store_url: str
) -> None:
    large = NewAttachment("audio", "audio/ogg", b"x" * (CAP + 1), "voice.ogg")
    with pytest.raises(AttachmentTooLarge):
        await store.record_user_turn(
            KEY, text="listen", chat_id=1, message_id=1, attachments=[PHOTO, large]
        )
    assert await scalar(store_url, "SELECT count(*) FROM turns") == 0
    assert await scalar(store_url, "SELECT count(*) FROM conversations") == 0
    assert await store.record_user_turn(KEY, text="listen", chat_id=1, message_id=1)


async def test_a_text_turn_into_an_existing_conversation_is_one_statement(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _record(store, KEY, 1)
    statements = await _record_statements(store, monkeypatch)
    await _record(store, KEY, 2)
    assert len(statements) == 1, statements
    assert statements[0].startswith("INSERT INTO turns")


async def test_processes_recording_a_keys_first_messages_at_once_share_one_conversation(
    store_url: str,
) -> None:
    """As two bot processes behind one webhook would: both receive every message (a
    retried delivery) of a chat they have never seen, and record it at the same moment."""
    async with opened_store(store_url) as one, opened_store(store_url) as two:
        key = ConversationKey(-100, 5)
        results = await asyncio.gather(
            *(
                s.record_user_turn(
                    key,
                    text=f"m{n}",
                    chat_id=-100,
                    message_id=n,
                    attachments=[PHOTO] if n % 3 == 0 else (),
                )
                for n in range(40)
                for s in (one, two)
            )
        )
        stored = [r for r in results if r is not None]
        assert len(stored) == 40
        assert len({r.conversation_id for r in stored}) == 1
        stats = await one.chat_stats()
        assert [(s.chat_id, s.conversations, s.user_turns) for s in stats] == [(-100, 1, 40)]


# -- what the prompt needs ----------------------------------------------------------------


async def test_prompt_inputs_are_the_chats_setting_and_its_history(store: Store) -> None:
    first = await _record(store, KEY, 1, "one")
    answer = await store.start_answer(first.conversation_id, first.user_turn_id)
    await store.finish_answer(answer, text="two", status=AnswerStatus.COMPLETE)
    second = await _record(store, KEY, 2, "three")
    await _record(store, KEY, 3, "waiting behind it")
    await store.set_setting(1, "system_prompt", "Be brief.")
    await store.set_setting(2, "system_prompt", "Another chat's.")
    arguments: dict[str, Any] = {"char_budget": 100, "media_limit": 1}
    inputs = await store.prompt_inputs(
        second.conversation_id,
        chat_id=1,
        prompt_setting="system_prompt",
        until_turn_id=second.user_turn_id,
        **arguments,
    )
    assert inputs.system_prompt == "Be brief."
    assert [t.text for t in inputs.history] == ["one", "two", "three"]
    assert inputs.history == await store.history(
        second.conversation_id, until_turn_id=second.user_turn_id, **arguments
    )


async def test_prompt_inputs_without_a_setting_or_turns(store: Store) -> None:
    conversation = await store.current_conversation(KEY)
    inputs = await store.prompt_inputs(
        conversation, chat_id=1, prompt_setting="system_prompt", char_budget=100, media_limit=0
    )
    assert inputs.system_prompt is None
    assert inputs.history == []


# -- many checkpoints at once -------------------------------------------------------------


async def _streaming_answers(store: Store, count: int) -> list[int]:
    recorded = [await _record(store, ConversationKey(n % 7), n) for n in range(count)]
    return list(
        await asyncio.gather(
            *(store.start_answer(r.conversation_id, r.user_turn_id) for r in recorded)
        )
    )


async def _saved(store_url: str, answers: list[int]) -> list[tuple[str, list[int], str]]:
    rows = await fetch_all(
        store_url, "SELECT id, text, reply_message_ids, status FROM turns WHERE role = 'assistant'"
    )
    by_id = {row[0]: row[1:] for row in rows}
    return [
        (
            by_id[a][0],
            json.loads(by_id[a][1]) if isinstance(by_id[a][1], str) else list(by_id[a][1]),
            by_id[a][2],
        )
        for a in answers
    ]


async def test_many_checkpoints_are_saved_by_one_call(store: Store, store_url: str) -> None:
    answers = await _streaming_answers(store, 3)
    await store.update_answers(
        [
            AnswerCheckpoint(answers[0], "Once", (10,)),
            AnswerCheckpoint(answers[2], "Once upon a time", (30, 31)),
        ]
    )
    assert await _saved(store_url, answers) == [
        ("Once", [10], "streaming"),
        ("", [], "streaming"),
        ("Once upon a time", [30, 31], "streaming"),
    ]


async def test_a_checkpoint_landing_after_the_answer_finished_changes_nothing(
    store: Store, store_url: str
) -> None:
    done, going = await _streaming_answers(store, 2)
    await store.finish_answer(done, text="The end.", status=AnswerStatus.COMPLETE, message_ids=[1])
    await store.update_answers(
        [AnswerCheckpoint(done, "The", (1,)), AnswerCheckpoint(going, "Still", (2,))]
    )
    assert await _saved(store_url, [done, going]) == [
        ("The end.", [1], "complete"),
        ("Still", [2], "streaming"),
    ]


async def test_no_checkpoints_write_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    statements = await _record_statements(store, monkeypatch)
    await store.update_answers([])
    assert statements == []


async def test_a_thousand_checkpoints_are_saved_in_one_call(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = await _streaming_answers(store, 1000)
    statements = await _record_statements(store, monkeypatch)
    await store.update_answers([AnswerCheckpoint(a, f"text {a}", (a,)) for a in answers])
    writes = [s for s in statements if s.startswith(("WITH", "UPDATE"))]
    assert 1 <= len(writes) <= 2, "a statement per few hundred answers at most"
    assert await _saved(store_url, answers) == [(f"text {a}", [a], "streaming") for a in answers]


async def _record_statements(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the store sends from now on: SQLite's trace callback (BEGIN and
    COMMIT included), or asyncpg's query methods wrapped (one entry per `executemany`;
    the pool's reset of a connection given back is not the store's)."""
    statements: list[str] = []
    if isinstance(store, SQLiteStore):
        db = store._db
        assert db is not None
        await db.set_trace_callback(statements.append)
        return statements
    for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
        monkeypatch.setattr(asyncpg.Connection, name, _recording(statements, name))
    return statements


def _recording(statements: list[str], name: str) -> Callable[..., Any]:
    method = getattr(asyncpg.Connection, name)

    async def recording(self: asyncpg.Connection, query: str, *args: Any, **kw: Any) -> Any:
        if not query.startswith("SELECT pg_advisory_unlock_all()"):
            statements.append(query)
        return await method(self, query, *args, **kw)

    return recording
