"""Chats: a key's current conversation, created once however many processes ask at the same
moment, and a turn arriving into it; a chat's settings; a chat that changed its id."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from storage.errors import TooManyWaiting, refers_to_missing_row
from storage.models import ConversationKey, NewAttachment, RecordedTurn
from storage.session import Session
from storage.turns import write_user_turn
from storage.waiting import count_waiting


def _insert_into_current(topic: str) -> str:
    """A user turn inserted into the key's newest conversation, found by the insert itself;
    no row when the key has none yet, or when the message was stored before."""
    return (
        "INSERT INTO turns (conversation_id, role, text, chat_id, message_id, sender_id, "
        "sender_name, created_at) SELECT id, 'user', ?, ?, ?, ?, ?, ? "
        f"FROM conversations WHERE chat_id = ? AND {topic} ORDER BY id DESC LIMIT 1 "
        "ON CONFLICT DO NOTHING RETURNING id, conversation_id"
    )


# A NULL topic is matched with IS NULL, which unlike `IS NOT DISTINCT FROM` can use the index.
_INSERT_INTO_CURRENT = _insert_into_current("thread_id IS NULL")
_INSERT_INTO_CURRENT_TOPIC = _insert_into_current("thread_id = ?")
_FIND_CURRENT = "SELECT id FROM conversations WHERE chat_id = ? AND thread_id IS NULL "
_FIND_CURRENT_TOPIC = "SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ? "


def _key_values(key: ConversationKey) -> tuple[int, ...]:
    return (key.chat_id,) if key.thread_id is None else (key.chat_id, key.thread_id)


async def current_conversation(db: Session, key: ConversationKey) -> int:
    """The key's newest conversation, created on first use. Processes creating the first
    one at once take turns (see `create_once`), so the key gets one, not two."""
    found = await find_current(db, key)
    if found is not None:
        return found
    async with db.transaction():
        return await create_once(db, key)


async def record_user_turn(
    db: Session,
    key: ConversationKey,
    *,
    text: str,
    chat_id: int,
    message_id: int | None,
    sender_id: int | None,
    sender_name: str | None,
    attachments: Sequence[NewAttachment],
    hashes: Sequence[str],
    max_waiting: int | None = None,
) -> RecordedTurn | None:
    """The turn stored in the key's current conversation (created once on first use), or
    None when (chat_id, message_id) was stored before, by this process or another.

    A text turn in an existing conversation, the usual case, is one statement and one round
    trip: the conversation is looked up inside the insert. Otherwise (media, the key's first
    message, or a message seen before) it is one transaction, so the turn never exists
    without its attachments and a key never gets two first conversations.

    With `max_waiting`, a sender who has that many turns waiting in the key's conversations
    (see `storage.waiting`) gets `TooManyWaiting` and nothing is stored. The count and the
    insert are one transaction under the key's lock, so two processes storing the same
    sender's messages at once cannot both slip under the cap.

    A conversation retention deletes at the very moment a turn goes into it (on PostgreSQL;
    see `storage.retention`) makes the insert fail as referring to a row that is gone; the
    turn then goes into a new conversation at once, as it would a moment later.
    """
    fields = (text, chat_id, message_id, sender_id, sender_name, db.dialect.time(time.time()))
    room = None
    if max_waiting is not None and sender_id is not None:
        room = partial(_check_room, db, key, sender_id, chat_id, message_id, max_waiting)
    if not attachments and room is None:
        sql = _INSERT_INTO_CURRENT if key.thread_id is None else _INSERT_INTO_CURRENT_TOPIC
        try:
            row = await db.fetchrow(sql, *fields, *_key_values(key))
        except Exception as exc:
            if not refers_to_missing_row(exc):
                raise
            row = None  # its conversation was being deleted: a new one is made below
        if row is not None:
            return RecordedTurn(conversation_id=int(row[1]), user_turn_id=int(row[0]))
    write = partial(_write_turn, db, key, fields, attachments, hashes, room)
    try:
        return await write()
    except Exception as exc:
        if not refers_to_missing_row(exc):
            raise
    return await write()  # the conversation found was being deleted; now it is gone


async def _write_turn(
    db: Session,
    key: ConversationKey,
    fields: tuple[object, ...],
    attachments: Sequence[NewAttachment],
    hashes: Sequence[str],
    room: Callable[[], Awaitable[None]] | None,
) -> RecordedTurn | None:
    """One transaction: the sender's `room` checked (with a cap), the key's conversation
    found or created, the turn and its media written."""
    async with db.transaction():
        if room is not None:
            await room()
        conversation_id = await create_once(db, key)
        turn_id = await write_user_turn(db, (conversation_id, *fields), attachments, hashes)
    return None if turn_id is None else RecordedTurn(conversation_id, turn_id)


async def _check_room(
    db: Session,
    key: ConversationKey,
    sender_id: int,
    chat_id: int,
    message_id: int | None,
    max_waiting: int,
) -> None:
    """Inside the transaction, under the key's lock: `TooManyWaiting` when the sender already
    has `max_waiting` turns waiting (unless this message is one of them, delivered again)."""
    await db.dialect.lock_key(db, key)
    waiting = await count_waiting(db, key, sender_id)
    if waiting >= max_waiting and not await stored_before(db, chat_id, message_id):
        raise TooManyWaiting(waiting, max_waiting)


async def create_once(db: Session, key: ConversationKey) -> int:
    """Inside a write transaction: the key's newest conversation, or a new one. A key found
    without one is locked (see `Dialect.lock_key`) and looked up again, so a conversation
    another process created meanwhile is found rather than made twice."""
    found = await find_current(db, key)
    if found is not None:
        return found
    await db.dialect.lock_key(db, key)
    found = await find_current(db, key)
    return found if found is not None else await insert_conversation(db, key)


async def stored_before(db: Session, chat_id: int, message_id: int | None) -> bool:
    """Whether (chat_id, message_id) is a turn already: a message delivered again is not
    refused for a full queue it is itself part of; storing it finds it instead."""
    if message_id is None:
        return False
    found = await db.fetchval(
        "SELECT 1 FROM turns WHERE chat_id = ? AND message_id = ?", chat_id, message_id
    )
    return found is not None


async def find_current(db: Session, key: ConversationKey) -> int | None:
    sql = _FIND_CURRENT if key.thread_id is None else _FIND_CURRENT_TOPIC
    found = await db.fetchval(sql + "ORDER BY id DESC LIMIT 1", *_key_values(key))
    return None if found is None else int(found)


async def insert_conversation(db: Session, key: ConversationKey) -> int:
    found = await db.fetchval(
        "INSERT INTO conversations (chat_id, thread_id, created_at) VALUES (?, ?, ?) RETURNING id",
        key.chat_id,
        key.thread_id,
        db.dialect.time(time.time()),
    )
    return int(found)


async def load_setting(db: Session, chat_id: int, name: str) -> str | None:
    value = await db.fetchval(
        "SELECT value FROM chat_settings WHERE chat_id = ? AND name = ?", chat_id, name
    )
    return None if value is None else str(value)


async def save_setting(db: Session, chat_id: int, name: str, value: str | None) -> None:
    """`None` removes the setting (back to the default)."""
    if value is None:
        await db.execute("DELETE FROM chat_settings WHERE chat_id = ? AND name = ?", chat_id, name)
        return
    await db.execute(
        "INSERT INTO chat_settings (chat_id, name, value) VALUES (?, ?, ?) "
        "ON CONFLICT (chat_id, name) DO UPDATE SET value = excluded.value",
        chat_id,
        name,
        value,
    )


async def migrate_chat(db: Session, old_chat_id: int, new_chat_id: int) -> None:
    """Conversations, settings and idempotency keys move to the new chat id. Where both ids
    have a conversation for a topic, the newest stays current; where both have a setting,
    the new chat's wins, as it was set more recently. A turn or command whose message id
    the new chat already used keeps the old chat id, so both deliveries stay recognised."""
    old, new = old_chat_id, new_chat_id
    async with db.transaction():
        await db.execute("UPDATE conversations SET chat_id = ? WHERE chat_id = ?", new, old)
        await db.execute(
            "INSERT INTO chat_settings (chat_id, name, value) SELECT ?, name, value "
            "FROM chat_settings WHERE chat_id = ? ON CONFLICT DO NOTHING",
            new,
            old,
        )
        await db.execute("DELETE FROM chat_settings WHERE chat_id = ?", old)
        await db.execute(
            "UPDATE turns SET chat_id = ? WHERE chat_id = ? AND (message_id IS NULL "
            "OR NOT EXISTS (SELECT 1 FROM turns n WHERE n.chat_id = ? "
            "AND n.message_id = turns.message_id))",
            new,
            old,
            new,
        )
        await db.execute(
            "UPDATE handled_commands SET chat_id = ? WHERE chat_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM handled_commands n WHERE n.chat_id = ? "
            "AND n.message_id = handled_commands.message_id)",
            new,
            old,
            new,
        )
