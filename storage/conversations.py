"""Chats on SQLite: a key's current conversation, created once, and a turn arriving into it;
a chat's settings; a chat that changed its id."""

from __future__ import annotations

import time
from collections.abc import Sequence

import aiosqlite

from storage.connection import transaction
from storage.models import ConversationKey, NewAttachment, RecordedTurn
from storage.turns import write_user_turn

_INSERT_INTO_CURRENT = (
    "INSERT INTO turns (conversation_id, role, text, chat_id, message_id, sender_id, "
    "sender_name, created_at) SELECT id, 'user', ?, ?, ?, ?, ?, ? FROM conversations "
    "WHERE chat_id = ? AND thread_id IS ? ORDER BY id DESC LIMIT 1 "
    "ON CONFLICT DO NOTHING RETURNING id, conversation_id"
)


async def current_conversation(db: aiosqlite.Connection, key: ConversationKey) -> int:
    """The key's newest conversation, created on first use. The first one is created under
    the write lock after looking again, so two processes sharing the file cannot both
    create one."""
    found = await find_current(db, key)
    if found is not None:
        return found
    async with transaction(db):
        return await find_or_create(db, key)


async def record_user_turn(
    db: aiosqlite.Connection,
    key: ConversationKey,
    *,
    text: str,
    chat_id: int,
    message_id: int | None,
    sender_id: int | None,
    sender_name: str | None,
    attachments: Sequence[NewAttachment],
    hashes: Sequence[str],
) -> RecordedTurn | None:
    """The turn stored in the key's current conversation (created on first use), or None
    when (chat_id, message_id) was stored before.

    A text turn in an existing conversation, the usual case, is one statement: the
    conversation is looked up inside the insert, so the connection's thread is visited once.
    Otherwise (media, the key's first message, or a message seen before) it is one
    transaction, so the turn never exists without its attachments and a key never gets
    two first conversations.
    """
    fields = (text, chat_id, message_id, sender_id, sender_name, time.time())
    if not attachments:
        rows = list(
            await db.execute_fetchall(_INSERT_INTO_CURRENT, (*fields, key.chat_id, key.thread_id))
        )
        if rows:
            return RecordedTurn(conversation_id=int(rows[0][1]), user_turn_id=int(rows[0][0]))
    async with transaction(db):
        conversation_id = await find_or_create(db, key)
        turn_id = await write_user_turn(db, (conversation_id, *fields), attachments, hashes)
    return None if turn_id is None else RecordedTurn(conversation_id, turn_id)


async def find_or_create(db: aiosqlite.Connection, key: ConversationKey) -> int:
    """Inside a write transaction: the key's newest conversation, or a new one."""
    found = await find_current(db, key)
    return found if found is not None else await insert_conversation(db, key)


async def find_current(db: aiosqlite.Connection, key: ConversationKey) -> int | None:
    rows = list(
        await db.execute_fetchall(
            "SELECT id FROM conversations WHERE chat_id = ? AND thread_id IS ? "
            "ORDER BY id DESC LIMIT 1",
            (key.chat_id, key.thread_id),
        )
    )
    return int(rows[0][0]) if rows else None


async def insert_conversation(db: aiosqlite.Connection, key: ConversationKey) -> int:
    rows = list(
        await db.execute_fetchall(
            "INSERT INTO conversations (chat_id, thread_id, created_at) VALUES (?, ?, ?) "
            "RETURNING id",
            (key.chat_id, key.thread_id, time.time()),
        )
    )
    return int(rows[0][0])


async def load_setting(db: aiosqlite.Connection, chat_id: int, name: str) -> str | None:
    rows = list(
        await db.execute_fetchall(
            "SELECT value FROM chat_settings WHERE chat_id = ? AND name = ?", (chat_id, name)
        )
    )
    return None if not rows else str(rows[0][0])


async def migrate_chat(db: aiosqlite.Connection, old_chat_id: int, new_chat_id: int) -> None:
    """Conversations, settings and idempotency keys move to the new chat id. Where both ids
    have a conversation for a topic, the newest stays current; where both have a setting,
    the new chat's wins, as it was set more recently."""
    async with transaction(db):
        await db.execute(
            "UPDATE conversations SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id)
        )
        await db.execute(
            "INSERT INTO chat_settings (chat_id, name, value) "
            "SELECT ?, name, value FROM chat_settings WHERE chat_id = ? ON CONFLICT DO NOTHING",
            (new_chat_id, old_chat_id),
        )
        await db.execute("DELETE FROM chat_settings WHERE chat_id = ?", (old_chat_id,))
        # A turn whose message id the new chat already used keeps the old chat id, so both
        # deliveries stay recognised.
        await db.execute(
            "UPDATE OR IGNORE turns SET chat_id = ? WHERE chat_id = ?",
            (new_chat_id, old_chat_id),
        )
        await db.execute(
            "UPDATE OR IGNORE handled_commands SET chat_id = ? WHERE chat_id = ?",
            (new_chat_id, old_chat_id),
        )
