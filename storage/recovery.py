"""Finding, at start-up, the answers a dead process left undone, and reporting each once."""

from __future__ import annotations

import json
import time

import aiosqlite

from storage.connection import transaction
from storage.models import ConversationKey, PendingAnswer

_INTERRUPT_STREAMING = (
    "UPDATE turns SET status = 'interrupted', finished_at = ? WHERE status = 'streaming' "
    "RETURNING id, reply_to, reply_message_ids, conversation_id"
)

# Recent user turns that no answer (of any status) replies to: the bot stores a turn when it
# arrives, so a turn still waiting for its answer when the process died has none.
# Interrupted answers were handled first; they do reply to their turn.
_MARK_UNANSWERED = (
    "UPDATE turns SET reported_at = ? WHERE reported_at IS NULL AND role = 'user'"
    " AND created_at > ? AND NOT EXISTS (SELECT 1 FROM turns a WHERE a.reply_to = turns.id)"
    " RETURNING id, conversation_id, message_id"
)
_USER_MESSAGES = "SELECT id, message_id FROM turns WHERE id IN ({marks})"
# Older turns are not worth a message: whoever wrote them has long moved on.
RECENT_SECONDS = 24 * 60 * 60.0


async def collect_unfinished(db: aiosqlite.Connection) -> list[PendingAnswer]:
    """Answers still `streaming` become `interrupted` and are reported with the messages
    that showed them; then recent user turns nothing answered, with `assistant_turn_id`
    None. Both are marked in the same transaction, so a second call reports neither again."""
    now = time.time()
    async with transaction(db):
        streaming = sorted(await db.execute_fetchall(_INTERRUPT_STREAMING, (now,)))
        unanswered = sorted(
            await db.execute_fetchall(_MARK_UNANSWERED, (now, now - RECENT_SECONDS))
        )
        keys = await _conversation_keys(
            db, {row[3] for row in streaming} | {row[1] for row in unanswered}
        )
        asked = await _message_ids(db, {row[1] for row in streaming})
    answers = [
        PendingAnswer(
            keys[row[3]], row[1], row[0], tuple(json.loads(row[2])), asked.get(row[1]), row[3]
        )
        for row in streaming
    ]
    questions = [
        PendingAnswer(keys[row[1]], row[0], None, (), row[2], row[1]) for row in unanswered
    ]
    return answers + questions


async def _message_ids(db: aiosqlite.Connection, turn_ids: set[int]) -> dict[int, int | None]:
    if not turn_ids:
        return {}
    marks = ", ".join("?" * len(turn_ids))
    rows = await db.execute_fetchall(_USER_MESSAGES.format(marks=marks), sorted(turn_ids))
    return {row[0]: row[1] for row in rows}


async def _conversation_keys(db: aiosqlite.Connection, ids: set[int]) -> dict[int, ConversationKey]:
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    rows = await db.execute_fetchall(
        f"SELECT id, chat_id, thread_id FROM conversations WHERE id IN ({marks})", sorted(ids)
    )
    return {row[0]: ConversationKey(row[1], row[2]) for row in rows}
