"""Finding, at start-up, the answers a dead process left undone, and reporting each once."""

from __future__ import annotations

import time

from storage.models import ConversationKey, PendingAnswer
from storage.session import Row, Session

# Older turns are not worth a message: whoever wrote them has long moved on.
RECENT_SECONDS = 24 * 60 * 60.0

# Recent user turns that no answer (of any status) replies to: the bot stores a turn when it
# arrives, so a turn still waiting for its answer when the process died has none.
# Interrupted answers were handled first; they do reply to their turn.
_MARK_UNANSWERED = (
    "UPDATE turns SET reported_at = ? WHERE reported_at IS NULL AND role = 'user'"
    " AND created_at > ? AND NOT EXISTS (SELECT 1 FROM turns a WHERE a.reply_to = turns.id)"
    " RETURNING id, conversation_id, message_id"
)


async def collect_unfinished(db: Session) -> list[PendingAnswer]:
    """Answers a gone process left `streaming` become `interrupted` and are reported with
    the messages that showed them; then recent user turns nothing answered, with
    `assistant_turn_id` None. Both are marked in the same transaction, so a second call
    reports neither again. Answers whose process is still alive (a process sharing the
    database, see `Dialect.gone_owner`) are being written right now: they are not touched."""
    now = time.time()
    async with db.transaction():
        streaming = await _interrupt_streaming(db, now)
        unanswered = sorted(
            await db.fetch(
                _MARK_UNANSWERED, db.dialect.time(now), db.dialect.time(now - RECENT_SECONDS)
            )
        )
        keys = await _conversation_keys(
            db, {row[3] for row in streaming} | {row[1] for row in unanswered}
        )
        asked = await _message_ids(db, {row[1] for row in streaming})
    questions = [
        PendingAnswer(keys[row[1]], row[0], None, (), row[2], row[1]) for row in unanswered
    ]
    return _answers(db, streaming, keys, asked) + questions


async def interrupt_orphans(db: Session) -> list[PendingAnswer]:
    """Only the first half of `collect_unfinished`: answers whose process is gone become
    `interrupted`, each reported once (to whichever process's update marked it)."""
    async with db.transaction():
        streaming = await _interrupt_streaming(db, time.time())
        keys = await _conversation_keys(db, {row[3] for row in streaming})
        asked = await _message_ids(db, {row[1] for row in streaming})
    return _answers(db, streaming, keys, asked)


async def _interrupt_streaming(db: Session, now: float) -> list[Row]:
    gone, values = db.dialect.gone_owner()
    return sorted(
        await db.fetch(
            "UPDATE turns SET status = 'interrupted', finished_at = ? "
            f"WHERE status = 'streaming' AND {gone} "
            "RETURNING id, reply_to, reply_message_ids, conversation_id",
            db.dialect.time(now),
            *values,
        )
    )


def _answers(
    db: Session,
    streaming: list[Row],
    keys: dict[int, ConversationKey],
    asked: dict[int, int | None],
) -> list[PendingAnswer]:
    return [
        PendingAnswer(
            keys[row[3]],
            row[1],
            row[0],
            db.dialect.read_ids(row[2]),
            asked.get(row[1]),
            row[3],
        )
        for row in streaming
    ]


async def _message_ids(db: Session, turn_ids: set[int]) -> dict[int, int | None]:
    if not turn_ids:
        return {}
    condition, values = db.dialect.any_of("id", sorted(turn_ids))
    rows = await db.fetch(f"SELECT id, message_id FROM turns WHERE {condition}", *values)
    return {row[0]: row[1] for row in rows}


async def _conversation_keys(db: Session, ids: set[int]) -> dict[int, ConversationKey]:
    if not ids:
        return {}
    condition, values = db.dialect.any_of("id", sorted(ids))
    rows = await db.fetch(
        f"SELECT id, chat_id, thread_id FROM conversations WHERE {condition}", *values
    )
    return {row[0]: ConversationKey(row[1], row[2]) for row in rows}
