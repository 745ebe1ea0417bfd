"""Conversations, settings and turns: what the bot writes and reads back on every message."""

from __future__ import annotations

import json
import time

import pytest

from storage import (
    AnswerCheckpoint,
    AnswerStatus,
    AttachmentTooLarge,
    ConversationKey,
    NewAttachment,
    StorageError,
    Store,
    database_engine,
)
from tests.databases import execute, scalar

CAP = 1000  # the `attachment_cap` fixture's default


async def test_each_chat_and_topic_has_its_own_conversation(store: Store) -> None:
    chat = await store.current_conversation(ConversationKey(1))
    topic = await store.current_conversation(ConversationKey(1, 9))
    other = await store.current_conversation(ConversationKey(2))
    assert len({chat, topic, other}) == 3
    assert await store.current_conversation(ConversationKey(1)) == chat
    assert await store.current_conversation(ConversationKey(1, 9)) == topic


async def test_new_conversation_becomes_current_and_keeps_the_old_one(store: Store) -> None:
    key = ConversationKey(5)
    old = await store.current_conversation(key)
    await store.add_user_turn(old, text="remember me", chat_id=5, message_id=1)
    fresh = await store.new_conversation(key)
    assert fresh != old
    assert await store.current_conversation(key) == fresh
    assert await store.history(fresh, char_budget=100, media_limit=0) == []
    exported = await store.export_conversation(old)
    assert [t["text"] for t in exported["turns"]] == ["remember me"]


async def test_settings_are_per_chat_and_none_removes_them(store: Store) -> None:
    await store.set_setting(1, "system_prompt", "Talk like a pirate.")
    await store.set_setting(1, "system_prompt", "Be brief.")
    await store.set_setting(1, "language", "fr")
    assert await store.get_setting(1, "system_prompt") == "Be brief."
    assert await store.get_setting(2, "system_prompt") is None
    await store.set_setting(1, "system_prompt", None)
    assert await store.get_setting(1, "system_prompt") is None
    assert await store.get_setting(1, "language") == "fr"


async def test_a_message_delivered_twice_is_stored_once(store: Store, store_url: str) -> None:
    conversation = await store.current_conversation(ConversationKey(1))
    first = await store.add_user_turn(conversation, text="hi", chat_id=1, message_id=77)
    again = await store.add_user_turn(conversation, text="hi", chat_id=1, message_id=77)
    elsewhere = await store.add_user_turn(conversation, text="hi", chat_id=2, message_id=77)
    assert first is not None and elsewhere is not None
    assert again is None
    assert await scalar(store_url, "SELECT count(*) FROM turns") == 2


async def test_turns_without_message_id_are_never_taken_for_duplicates(store: Store) -> None:
    conversation = await store.current_conversation(ConversationKey(1))
    a = await store.add_user_turn(conversation, text="x", chat_id=1, message_id=None)
    b = await store.add_user_turn(conversation, text="x", chat_id=1, message_id=None)
    assert a is not None and b is not None and a != b


async def test_duplicate_with_attachments_writes_nothing(store: Store, store_url: str) -> None:
    conversation = await store.current_conversation(ConversationKey(1))
    photo = NewAttachment("image", "image/jpeg", b"jpeg", "a.jpg", "file-1")
    await store.add_user_turn(conversation, text="", chat_id=1, message_id=3, attachments=[photo])
    other = NewAttachment("image", "image/jpeg", b"other jpeg", "b.jpg")
    again = await store.add_user_turn(
        conversation, text="", chat_id=1, message_id=3, attachments=[other]
    )
    assert again is None
    assert await scalar(store_url, "SELECT count(*) FROM attachments") == 1
    assert await scalar(store_url, "SELECT count(*) FROM blobs") == 1


async def test_the_same_photo_twice_is_stored_once(store: Store, store_url: str) -> None:
    conversation = await store.current_conversation(ConversationKey(1))
    photo = NewAttachment("image", "image/png", b"\x89PNG same bytes", "cat.png")
    for message_id in (1, 2):
        await store.add_user_turn(
            conversation, text="cat", chat_id=1, message_id=message_id, attachments=[photo]
        )
    other_chat = await store.current_conversation(ConversationKey(2))
    await store.add_user_turn(other_chat, text="", chat_id=2, message_id=1, attachments=[photo])
    assert await scalar(store_url, "SELECT count(*) FROM attachments") == 3
    assert await scalar(store_url, "SELECT count(*) FROM blobs") == 1
    turns = await store.history(conversation, char_budget=100, media_limit=5)
    assert [t.attachments[0].data for t in turns] == [photo.data, photo.data]
    assert turns[0].attachments[0].sha256 == turns[1].attachments[0].sha256


async def test_attachment_over_the_cap_is_refused_before_anything_is_written(
    store: Store, store_url: str
) -> None:
    conversation = await store.current_conversation(ConversationKey(1))
    small = NewAttachment("image", "image/png", b"x" * CAP, "ok.png")
    large = NewAttachment("audio", "audio/ogg", b"x" * (CAP + 1), "voice.ogg")
    with pytest.raises(AttachmentTooLarge) as caught:
        await store.add_user_turn(
            conversation, text="listen", chat_id=1, message_id=1, attachments=[small, large]
        )
    assert isinstance(caught.value, StorageError)
    assert caught.value.user_message == (
        "That file is too large: I can keep attachments of up to 1000 bytes."
    )
    assert await scalar(store_url, "SELECT count(*) FROM turns") == 0
    assert await store.add_user_turn(conversation, text="retry", chat_id=1, message_id=1)


def test_attachment_cap_is_worded_in_megabytes() -> None:
    assert "up to 20 MB." in AttachmentTooLarge(21 << 20, 20 << 20).user_message
    assert "up to 1.5 MB." in AttachmentTooLarge(2 << 20, 3 << 19).user_message


async def test_answer_lifecycle_is_recorded_with_reply_message_ids(store: Store) -> None:
    conversation = await store.current_conversation(ConversationKey(1))
    user = await store.add_user_turn(
        conversation, text="hi", chat_id=1, message_id=10, sender_id=500, sender_name="Ada"
    )
    assert user is not None
    answer = await store.start_answer(conversation, user)
    await store.update_answers([AnswerCheckpoint(answer, "Hel", (11,))])
    await store.finish_answer(
        answer, text="Hello!", status=AnswerStatus.COMPLETE, message_ids=[11, 12]
    )
    await store.update_answers([AnswerCheckpoint(answer, "late checkpoint", (11,))])
    turns = (await store.export_conversation(conversation))["turns"]
    assert turns[0]["sender"] == {"id": 500, "name": "Ada"}
    assert turns[0]["message_id"] == 10
    assert turns[1]["text"] == "Hello!"
    assert turns[1]["status"] == "complete"
    assert turns[1]["reply_to"] == user
    assert turns[1]["reply_message_ids"] == [11, 12]


async def test_answers_are_checked_against_their_turns(store: Store) -> None:
    conversation = await store.current_conversation(ConversationKey(1))
    other = await store.current_conversation(ConversationKey(2))
    user = await store.add_user_turn(conversation, text="hi", chat_id=1, message_id=1)
    assert user is not None
    with pytest.raises(LookupError):
        await store.start_answer(other, user)
    with pytest.raises(LookupError):
        await store.finish_answer(user, text="", status=AnswerStatus.FAILED)
    answer = await store.start_answer(conversation, user)
    with pytest.raises(ValueError, match="cannot finish"):
        await store.finish_answer(answer, text="", status=AnswerStatus.STREAMING)


async def test_retry_replaces_the_previous_answer(store: Store) -> None:
    conversation = await store.current_conversation(ConversationKey(1))
    photo = NewAttachment("image", "image/png", b"png", "p.png", "tg-file")
    user = await store.add_user_turn(
        conversation, text="what is this?", chat_id=1, message_id=1, attachments=[photo]
    )
    assert user is not None
    first = await store.start_answer(conversation, user)
    await store.finish_answer(first, text="A dog.", status=AnswerStatus.COMPLETE)

    last = await store.last_user_turn(conversation)
    assert last is not None and last.turn_id == user
    assert last.attachments[0].data == b"png"
    assert last.attachments[0].telegram_file_id == "tg-file"

    await store.replace_answers_after(user)
    second = await store.start_answer(conversation, user)
    await store.finish_answer(second, text="A cat.", status=AnswerStatus.COMPLETE)
    turns = await store.history(conversation, char_budget=1000, media_limit=1)
    assert [t.text for t in turns] == ["what is this?", "A cat."]
    statuses = [t["status"] for t in (await store.export_conversation(conversation))["turns"]]
    assert statuses == [None, "replaced", "complete"]


async def test_group_migration_moves_conversations_settings_and_idempotency(
    store: Store,
) -> None:
    old_chat, new_chat = -100, -1001234
    conversation = await store.current_conversation(ConversationKey(old_chat, 3))
    await store.add_user_turn(conversation, text="before", chat_id=old_chat, message_id=8)
    await store.set_setting(old_chat, "system_prompt", "Group rules.")
    await store.migrate_chat(old_chat, new_chat)
    assert await store.current_conversation(ConversationKey(new_chat, 3)) == conversation
    assert await store.get_setting(new_chat, "system_prompt") == "Group rules."
    assert await store.get_setting(old_chat, "system_prompt") is None
    assert await store.add_user_turn(conversation, text="x", chat_id=new_chat, message_id=8) is None
    assert [s.chat_id for s in await store.chat_stats()] == [new_chat]


async def test_group_migration_when_the_new_chat_already_has_data(store: Store) -> None:
    old_chat, new_chat = -100, -1001234
    old = await store.current_conversation(ConversationKey(old_chat))
    await store.add_user_turn(old, text="old", chat_id=old_chat, message_id=1)
    await store.set_setting(old_chat, "system_prompt", "Old rules.")
    await store.set_setting(old_chat, "language", "de")
    new = await store.current_conversation(ConversationKey(new_chat))
    await store.add_user_turn(new, text="new", chat_id=new_chat, message_id=1)
    await store.set_setting(new_chat, "system_prompt", "New rules.")
    await store.migrate_chat(old_chat, new_chat)
    assert await store.current_conversation(ConversationKey(new_chat)) == new
    assert await store.get_setting(new_chat, "system_prompt") == "New rules."
    assert await store.get_setting(new_chat, "language") == "de"
    assert await store.add_user_turn(new, text="x", chat_id=new_chat, message_id=1) is None
    assert await store.add_user_turn(new, text="x", chat_id=old_chat, message_id=1) is None
    (stats,) = await store.chat_stats()
    assert (stats.chat_id, stats.conversations, stats.user_turns) == (new_chat, 2, 2)


async def test_stats_count_turns_per_chat(store: Store) -> None:
    conversation = await store.current_conversation(ConversationKey(1))
    for message_id, status in ((1, AnswerStatus.COMPLETE), (2, AnswerStatus.FAILED)):
        user = await store.add_user_turn(conversation, text="q", chat_id=1, message_id=message_id)
        assert user is not None
        answer = await store.start_answer(conversation, user)
        await store.finish_answer(answer, text="", status=status, error="backend down")
    await store.new_conversation(ConversationKey(1))
    await store.current_conversation(ConversationKey(2))
    one, two = await store.chat_stats()
    assert (one.chat_id, one.conversations, one.user_turns) == (1, 2, 2)
    assert (one.assistant_turns, one.failed_turns) == (2, 1)
    assert one.last_activity is not None
    assert (two.chat_id, two.user_turns, two.last_activity) == (2, 0, None)


async def test_user_turns_are_counted_per_sender_since_a_time(store: Store) -> None:
    conversation = await store.current_conversation(ConversationKey(1))
    before = time.time()
    for message_id, sender in ((1, 10), (2, 10), (3, 11)):
        await store.add_user_turn(
            conversation, text="q", chat_id=1, message_id=message_id, sender_id=sender
        )
    assert await store.count_user_turns_since(10, before) == 2
    assert await store.count_user_turns_since(11, before) == 1
    assert await store.count_user_turns_since(10, time.time() + 60) == 0


async def test_export_is_json_ready_and_complete(store: Store) -> None:
    conversation = await store.current_conversation(ConversationKey(7, 2))
    voice = NewAttachment("audio", "audio/ogg", b"ogg", "voice.ogg", "tg-voice")
    user = await store.add_user_turn(
        conversation, text="listen", chat_id=7, message_id=1, sender_name="Bo", attachments=[voice]
    )
    assert user is not None
    answer = await store.start_answer(conversation, user)
    await store.finish_answer(answer, text="", status=AnswerStatus.FAILED, error="timeout")
    document = json.loads(json.dumps(await store.export_conversation(conversation)))
    assert document["conversation"]["chat_id"] == 7
    assert document["conversation"]["thread_id"] == 2
    user_turn, failed = document["turns"]
    assert user_turn["attachments"] == [
        {
            "kind": "audio",
            "mime_type": "audio/ogg",
            "size": 3,
            "filename": "voice.ogg",
            "sha256": "90308fe99871113bf5490ec73a8813b667adc60fe01530102a6c7bfb73c66481",
            "telegram_file_id": "tg-voice",
        }
    ]
    assert user_turn["created_at"].endswith("+00:00")
    assert (failed["status"], failed["error"]) == ("failed", "timeout")
    with pytest.raises(LookupError):
        await store.export_conversation(conversation + 100)


async def test_a_command_is_claimed_once_per_message(store: Store) -> None:
    assert await store.claim_command(-5, 10) is True
    assert await store.claim_command(-5, 10) is False
    assert await store.claim_command(-5, 11) is True
    assert await store.claim_command(7, 10) is True
    await store.migrate_chat(-5, -1005)
    assert await store.claim_command(-1005, 10) is False, "claims follow a migrated group"


async def test_old_command_claims_are_forgotten(store: Store, store_url: str) -> None:
    assert await store.claim_command(1, 1)
    three_days = "259200" if database_engine(store_url) == "sqlite" else "interval '3 days'"
    await execute(store_url, f"UPDATE handled_commands SET handled_at = handled_at - {three_days}")
    assert await store.claim_command(1, 2)
    assert await scalar(store_url, "SELECT count(*) FROM handled_commands") == 1


async def test_the_latest_answer_names_its_question_messages_and_asker(store: Store) -> None:
    conversation = await store.current_conversation(ConversationKey(-7))
    assert await store.latest_answer(conversation) is None
    first = await store.add_user_turn(conversation, text="q1", chat_id=-7, message_id=1)
    assert first is not None
    answer = await store.start_answer(conversation, first)
    await store.finish_answer(answer, text="a1", status=AnswerStatus.COMPLETE, message_ids=[2, 3])
    second = await store.add_user_turn(
        conversation, text="q2", chat_id=-7, message_id=4, sender_id=99
    )
    assert second is not None
    streaming = await store.start_answer(conversation, second)
    latest = await store.latest_answer(conversation)
    assert latest is not None
    assert (latest.answer_turn_id, latest.user_turn_id, latest.status) == (
        streaming,
        second,
        AnswerStatus.STREAMING,
    )
    assert (latest.user_message_id, latest.sender_id) == (4, 99)
    await store.finish_answer(streaming, text="a2", status=AnswerStatus.COMPLETE, message_ids=[5])
    await store.replace_answers_after(second)
    latest = await store.latest_answer(conversation)
    assert latest is not None and latest.message_ids == (2, 3), "replaced answers are skipped"


async def test_an_edited_message_rewrites_its_turn(store: Store) -> None:
    conversation = await store.current_conversation(ConversationKey(8))
    assert await store.edit_user_turn(8, 1, "never stored") is None
    first = await store.add_user_turn(conversation, text="old", chat_id=8, message_id=1)
    assert first is not None
    answer = await store.start_answer(conversation, first)
    await store.finish_answer(answer, text="a", status=AnswerStatus.COMPLETE, message_ids=[2])
    edited = await store.edit_user_turn(8, 1, "new")
    assert edited is not None
    assert (edited.user_turn_id, edited.changed, edited.newest) == (first, True, True)
    assert edited.answer_message_ids == (2,)
    again = await store.edit_user_turn(8, 1, "new")
    assert again is not None and not again.changed, "an edit seen twice changes nothing"
    await store.add_user_turn(conversation, text="later", chat_id=8, message_id=3)
    older = await store.edit_user_turn(8, 1, "newer")
    assert older is not None and older.changed and not older.newest
    (turn,) = [t for t in await store.history(conversation, char_budget=10_000, media_limit=0)][:1]
    assert turn.text == "newer"
