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

# The last turn of each key's current (newest) conversation, when it is a user turn: nothing
# answers it, since an answer would come after it. Interrupted answers were handled first.
_MARK_UNANSWERED = (
    "UPDATE turns SET reported_at = ? WHERE reported_at IS NULL AND role = 'user' AND id IN ("
    " SELECT (SELECT max(t.id) FROM turns t WHERE t.conversation_id = c.id)"
    " FROM conversations c"
    " WHERE c.id IN (SELECT max(id) FROM conversations GROUP BY chat_id, thread_id)"
    ") RETURNING id, conversation_id"
)


async def collect_unfinished(db: aiosqlite.Connection) -> list[PendingAnswer]:
    """Answers still `streaming` become `interrupted` and are reported with the messages
    that showed them; then unanswered last user turns, with `assistant_turn_id` None. Both
    are marked in the same transaction, so a second call reports neither again."""
    now = time.time()
    async with transaction(db):
        streaming = sorted(await db.execute_fetchall(_INTERRUPT_STREAMING, (now,)))
        unanswered = sorted(await db.execute_fetchall(_MARK_UNANSWERED, (now,)))
        keys = await _conversation_keys(
            db, {row[3] for row in streaming} | {row[1] for row in unanswered}
        )
    answers = [
        PendingAnswer(keys[row[3]], row[1], row[0], tuple(json.loads(row[2]))) for row in streaming
    ]
    questions = [PendingAnswer(keys[row[1]], row[0], None, ()) for row in unanswered]
    return answers + questions


async def _conversation_keys(db: aiosqlite.Connection, ids: set[int]) -> dict[int, ConversationKey]:
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    rows = await db.execute_fetchall(
        f"SELECT id, chat_id, thread_id FROM conversations WHERE id IN ({marks})", sorted(ids)
    )
    return {row[0]: ConversationKey(row[1], row[2]) for row in rows}
