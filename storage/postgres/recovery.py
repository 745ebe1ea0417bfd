"""Finding, at start-up, the answers a dead process left undone on PostgreSQL, and reporting
each once: the same rule as `storage.recovery`, in one transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg

from storage.models import ConversationKey, PendingAnswer
from storage.postgres.turns import now
from storage.recovery import RECENT_SECONDS

_INTERRUPT_STREAMING = (
    "UPDATE turns SET status = 'interrupted', finished_at = $1 WHERE status = 'streaming' "
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
    """Answers still `streaming` become `interrupted` and are reported with the messages that
    showed them; then recent user turns nothing answered, with `assistant_turn_id` None.

    Every `streaming` answer is taken for a dead process's: with several processes on one
    database, this must run before any of them starts answering (or be narrowed to answers
    whose process is known to be gone)."""
    moment = now()
    async with db.transaction():
        streaming = sorted(await db.fetch(_INTERRUPT_STREAMING, moment), key=_first)
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
