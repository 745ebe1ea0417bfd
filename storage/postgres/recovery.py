"""Finding, at start-up, the answers a dead process left undone on PostgreSQL, and reporting
each once: the same rule as `storage.recovery`, in one transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg

from storage.models import ConversationKey, PendingAnswer
from storage.postgres.locks import LockNamespace
from storage.postgres.turns import now
from storage.recovery import RECENT_SECONDS

# Answers still `streaming` whose writer no longer holds the advisory lock on its instance id
# (see `storage.postgres.locks.INSTANCE_LOCK`): its process died, or lost its connection.
# Answers of processes still alive are left alone. Answers without an owner were written
# before owners were recorded, by a process that is gone.
_INTERRUPT_STREAMING = (
    "UPDATE turns SET status = 'interrupted', finished_at = $1 WHERE status = 'streaming' "
    "AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.objsubid = 2 AND l.database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid = $2::bigint::oid "
    "AND l.objid = (hashtext(turns.owner)::bigint & 4294967295)::oid) "
    "RETURNING id, reply_to, reply_message_ids, conversation_id"
)
_MARK_UNANSWERED = (
    "UPDATE turns SET reported_at = $1 WHERE reported_at IS NULL AND role = 'user'"
    " AND created_at > $2 AND NOT EXISTS (SELECT 1 FROM turns a WHERE a.reply_to = turns.id)"
    " RETURNING id, conversation_id, message_id"
)

if TYPE_CHECKING:
    from storage.postgres.connection import Db


async def collect_unfinished(db: Db) -> list[PendingAnswer]:
    """Answers a gone process left `streaming` become `interrupted` and are reported with the
    messages that showed them; then recent user turns nothing answered, with
    `assistant_turn_id` None.

    Answers whose process still holds its instance lock are being written right now, by a
    live process sharing the database: they are not touched."""
    moment = now()
    async with db.transaction():
        streaming = sorted(
            await db.fetch(_INTERRUPT_STREAMING, moment, int(LockNamespace.INSTANCE)), key=_first
        )
        unanswered = sorted(
            await db.fetch(_MARK_UNANSWERED, moment, moment - timedelta(seconds=RECENT_SECONDS)),
            key=_first,
        )
        keys = await _conversation_keys(
            db, {row[3] for row in streaming} | {row[1] for row in unanswered}
        )
        asked = await _message_ids(db, {row[1] for row in streaming})
    answers = [
        PendingAnswer(keys[row[3]], row[1], row[0], tuple(row[2]), asked.get(row[1]), row[3])
        for row in streaming
    ]
    questions = [
        PendingAnswer(keys[row[1]], row[0], None, (), row[2], row[1]) for row in unanswered
    ]
    return answers + questions


async def interrupt_orphans(db: Db) -> list[PendingAnswer]:
    """Only the first half of `collect_unfinished`: answers whose process is gone become
    `interrupted`, each reported once (to whichever process's update marked it)."""
    async with db.transaction():
        streaming = sorted(
            await db.fetch(_INTERRUPT_STREAMING, now(), int(LockNamespace.INSTANCE)), key=_first
        )
        keys = await _conversation_keys(db, {row[3] for row in streaming})
        asked = await _message_ids(db, {row[1] for row in streaming})
    return [
        PendingAnswer(keys[row[3]], row[1], row[0], tuple(row[2]), asked.get(row[1]), row[3])
        for row in streaming
    ]


def _first(row: asyncpg.Record) -> int:
    return int(row[0])


async def _message_ids(db: Db, turn_ids: set[int]) -> dict[int, int | None]:
    if not turn_ids:
        return {}
    rows = await db.fetch(
        "SELECT id, message_id FROM turns WHERE id = ANY($1::bigint[])", sorted(turn_ids)
    )
    return {row[0]: row[1] for row in rows}


async def _conversation_keys(db: Db, ids: set[int]) -> dict[int, ConversationKey]:
    if not ids:
        return {}
    rows = await db.fetch(
        "SELECT id, chat_id, thread_id FROM conversations WHERE id = ANY($1::bigint[])",
        sorted(ids),
    )
    return {row[0]: ConversationKey(row[1], row[2]) for row in rows}
