"""Conversations on PostgreSQL: finding a key's current one, creating it once however many
processes ask at the same moment, and following a group that became a supergroup."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.models import ConversationKey
from storage.postgres.locks import LockNamespace, conversation_lock_key
from storage.postgres.turns import now

if TYPE_CHECKING:
    from storage.postgres.connection import Db


async def current_conversation(db: Db, key: ConversationKey) -> int:
    """The key's newest conversation, created on first use. Processes creating the first
    one at once take turns on an advisory lock and look again, so the key gets one, not two."""
    found = await _find_current(db, key)
    if found is not None:
        return found
    async with db.transaction():
        namespace, lock = conversation_lock_key(LockNamespace.CONVERSATION_CREATION, key)
        await db.execute("SELECT pg_advisory_xact_lock($1, $2)", namespace, lock)
        found = await _find_current(db, key)
        if found is not None:
            return found
        return await insert_conversation(db, key)


async def migrate_chat(db: Db, old_chat_id: int, new_chat_id: int) -> None:
    """Conversations, settings and idempotency keys move to the new chat id; where both
    have a setting the new chat's wins, and a turn whose message id the new chat already
    used keeps the old chat id, so both deliveries stay recognised."""
    async with db.transaction():
        await db.execute(
            "UPDATE conversations SET chat_id = $1 WHERE chat_id = $2", new_chat_id, old_chat_id
        )
        await db.execute(
            "INSERT INTO chat_settings (chat_id, name, value) SELECT $1, name, value "
            "FROM chat_settings WHERE chat_id = $2 ON CONFLICT DO NOTHING",
            new_chat_id,
            old_chat_id,
        )
        await db.execute("DELETE FROM chat_settings WHERE chat_id = $1", old_chat_id)
        await db.execute(
            "UPDATE turns t SET chat_id = $1 WHERE t.chat_id = $2 AND (t.message_id IS NULL "
            "OR NOT EXISTS (SELECT 1 FROM turns n WHERE n.chat_id = $1 "
            "AND n.message_id = t.message_id))",
            new_chat_id,
            old_chat_id,
        )
        await db.execute(
            "UPDATE handled_commands h SET chat_id = $1 WHERE h.chat_id = $2 AND NOT EXISTS "
            "(SELECT 1 FROM handled_commands n WHERE n.chat_id = $1 "
            "AND n.message_id = h.message_id)",
            new_chat_id,
            old_chat_id,
        )


async def _find_current(db: Db, key: ConversationKey) -> int | None:
    """The key's newest conversation; a NULL topic is matched with IS NULL, which unlike
    `IS NOT DISTINCT FROM` can use the index."""
    if key.thread_id is None:
        found = await db.fetchval(
            "SELECT id FROM conversations WHERE chat_id = $1 AND thread_id IS NULL "
            "ORDER BY id DESC LIMIT 1",
            key.chat_id,
        )
    else:
        found = await db.fetchval(
            "SELECT id FROM conversations WHERE chat_id = $1 AND thread_id = $2 "
            "ORDER BY id DESC LIMIT 1",
            key.chat_id,
            key.thread_id,
        )
    return None if found is None else int(found)


async def insert_conversation(db: Db, key: ConversationKey) -> int:
    found = await db.fetchval(
        "INSERT INTO conversations (chat_id, thread_id, created_at) VALUES ($1, $2, $3) "
        "RETURNING id",
        key.chat_id,
        key.thread_id,
        now(),
    )
    return int(found)
