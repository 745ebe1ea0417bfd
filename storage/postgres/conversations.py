"""Chats on PostgreSQL: a key's current conversation, created once however many processes ask
at the same moment, and a turn arriving into it; a chat's settings; following a group that
became a supergroup."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from storage.models import ConversationKey, NewAttachment, RecordedTurn
from storage.postgres.locks import LockNamespace, conversation_lock_key
from storage.postgres.turns import now, write_user_turn

if TYPE_CHECKING:
    from storage.postgres.connection import Db


def _insert_into_current(topic: str) -> str:
    """A user turn inserted into the key's newest conversation, found by the insert itself;
    no row when the key has none yet, or when the message was stored before."""
    return (
        "INSERT INTO turns (conversation_id, role, text, chat_id, message_id, sender_id, "
        "sender_name, created_at) SELECT id, 'user', $1, $2, $3, $4, $5, $6 "
        f"FROM conversations WHERE chat_id = $7 AND {topic} ORDER BY id DESC LIMIT 1 "
        "ON CONFLICT DO NOTHING RETURNING id, conversation_id"
    )


# A NULL topic is matched with IS NULL, which unlike `IS NOT DISTINCT FROM` can use the index.
_INSERT_INTO_CURRENT = _insert_into_current("thread_id IS NULL")
_INSERT_INTO_CURRENT_TOPIC = _insert_into_current("thread_id = $8")


async def current_conversation(db: Db, key: ConversationKey) -> int:
    """The key's newest conversation, created on first use. Processes creating the first
    one at once take turns on an advisory lock and look again, so the key gets one, not two."""
    found = await find_current(db, key)
    if found is not None:
        return found
    async with db.transaction():
        return await create_once(db, key)


async def record_user_turn(
    db: Db,
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
    """The turn stored in the key's current conversation (created once on first use), or
    None when (chat_id, message_id) was stored before, by this process or another.

    A text turn in an existing conversation, the usual case, is one statement and one round
    trip: the conversation is looked up inside the insert. Otherwise (media, the key's first
    message, or a message seen before) it is one transaction, so the turn never exists
    without its attachments and a key never gets two first conversations.
    """
    fields = (text, chat_id, message_id, sender_id, sender_name, now())
    if not attachments:
        if key.thread_id is None:
            row = await db.fetchrow(_INSERT_INTO_CURRENT, *fields, key.chat_id)
        else:
            row = await db.fetchrow(_INSERT_INTO_CURRENT_TOPIC, *fields, key.chat_id, key.thread_id)
        if row is not None:
            return RecordedTurn(conversation_id=int(row[1]), user_turn_id=int(row[0]))
    async with db.transaction():
        conversation_id = await find_current(db, key)
        if conversation_id is None:
            conversation_id = await create_once(db, key)
        turn_id = await write_user_turn(db, (conversation_id, *fields), attachments, hashes)
    return None if turn_id is None else RecordedTurn(conversation_id, turn_id)


async def create_once(db: Db, key: ConversationKey) -> int:
    """Inside a transaction, once the key was found without a conversation: under the key's
    advisory lock, the one another process created meanwhile, or a new one."""
    namespace, lock = conversation_lock_key(LockNamespace.CONVERSATION_CREATION, key)
    await db.execute("SELECT pg_advisory_xact_lock($1, $2)", namespace, lock)
    found = await find_current(db, key)
    if found is not None:
        return found
    return await insert_conversation(db, key)


async def load_setting(db: Db, chat_id: int, name: str) -> str | None:
    value = await db.fetchval(
        "SELECT value FROM chat_settings WHERE chat_id = $1 AND name = $2", chat_id, name
    )
    return None if value is None else str(value)


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


async def find_current(db: Db, key: ConversationKey) -> int | None:
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
