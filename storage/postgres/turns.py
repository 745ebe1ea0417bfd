"""Writing turns on PostgreSQL: a user's message with its media, and the answer's life.

Several processes may append to one conversation at once. Idempotency rests on the unique
(chat_id, message_id) index, which PostgreSQL enforces across transactions: of two processes
storing the same message, one gets the turn's id and the other waits for it, then gets None.
Blobs are inserted in SHA-256 order, so two turns sharing photos never deadlock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from storage.models import AnswerCheckpoint, AnswerStatus, NewAttachment
from storage.turns import FINAL_STATUSES

if TYPE_CHECKING:
    from storage.postgres.connection import Db

_INSERT_USER_TURN = (
    "INSERT INTO turns (conversation_id, role, text, chat_id, message_id, sender_id, "
    "sender_name, created_at) VALUES ($1, 'user', $2, $3, $4, $5, $6, $7) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
_SAVE_PROGRESS = (
    "UPDATE turns SET text = $1, reply_message_ids = $2 "
    "WHERE id = $3 AND role = 'assistant' AND status = 'streaming'"
)


def now() -> datetime:
    """This process's clock, as SQLite's store uses it, so quotas compare like with like."""
    return datetime.fromtimestamp(time.time(), UTC)


async def insert_user_turn(
    db: Db,
    conversation_id: int,
    *,
    text: str,
    chat_id: int,
    message_id: int | None,
    sender_id: int | None,
    sender_name: str | None,
    attachments: Sequence[NewAttachment],
    hashes: Sequence[str],
) -> int | None:
    """The new turn's id, or None when (chat_id, message_id) was stored before. A text turn
    is one statement; a turn with media is one transaction."""
    values = (conversation_id, text, chat_id, message_id, sender_id, sender_name, now())
    if not attachments:
        found = await db.fetchval(_INSERT_USER_TURN, *values)
        return None if found is None else int(found)
    async with db.transaction():
        return await write_user_turn(db, values, attachments, hashes)


async def write_user_turn(
    db: Db, values: tuple[object, ...], attachments: Sequence[NewAttachment], hashes: Sequence[str]
) -> int | None:
    """Inside the caller's transaction: the turn row, then its media (each blob once)."""
    found = await db.fetchval(_INSERT_USER_TURN, *values)
    if found is None:
        return None
    turn_id = int(found)
    if not attachments:
        return turn_id
    pairs = list(zip(attachments, hashes, strict=True))
    blobs = {sha: attachment.data for attachment, sha in pairs}
    await db.executemany(
        "INSERT INTO blobs (sha256, size, data) VALUES ($1, $2, $3) "
        "ON CONFLICT (sha256) DO NOTHING",
        [(sha, len(data), data) for sha, data in sorted(blobs.items())],
    )
    await db.executemany(
        "INSERT INTO attachments (turn_id, position, kind, mime_type, size, filename, "
        "telegram_file_id, sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            (turn_id, n, a.kind, a.mime_type, len(a.data), a.filename, a.telegram_file_id, sha)
            for n, (a, sha) in enumerate(pairs)
        ],
    )
    return turn_id


async def insert_answer(db: Db, conversation_id: int, user_turn_id: int, owner: str) -> int:
    """An assistant turn in status `streaming`, answering a user turn of that conversation,
    written by the process whose instance id is `owner`."""
    found = await db.fetchval(
        "INSERT INTO turns (conversation_id, role, text, reply_to, status, created_at, owner) "
        "SELECT conversation_id, 'assistant', '', id, 'streaming', $1, $4 FROM turns "
        "WHERE id = $2 AND conversation_id = $3 AND role = 'user' RETURNING id",
        now(),
        user_turn_id,
        conversation_id,
        owner,
    )
    if found is None:
        raise LookupError(
            f"Turn {user_turn_id} is not a user turn of conversation {conversation_id}."
        )
    return int(found)


async def save_progress_of_many(db: Db, checkpoints: Sequence[AnswerCheckpoint]) -> None:
    """Every checkpoint in one atomic, pipelined `executemany` (one round trip), each only
    while its answer is still streaming: a checkpoint taken before an answer finished may
    commit after it, and must not undo its end. In answer-id order, so two batches touching
    the same rows would never deadlock."""
    if not checkpoints:
        return
    await db.executemany(
        _SAVE_PROGRESS,
        [
            (c.text, list(c.message_ids), c.answer_id)
            for c in sorted(checkpoints, key=lambda c: c.answer_id)
        ],
    )


async def finish(
    db: Db,
    turn_id: int,
    *,
    text: str,
    status: AnswerStatus,
    message_ids: Sequence[int],
    error: str | None,
) -> None:
    """Record the answer's final text, status and the message ids that show it."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"An answer cannot finish as {status!r}.")
    found = await db.fetchval(
        "UPDATE turns SET text = $1, status = $2, reply_message_ids = $3, error = $4, "
        "finished_at = $5 WHERE id = $6 AND role = 'assistant' RETURNING id",
        text,
        str(status),
        list(message_ids),
        error,
        now(),
        turn_id,
    )
    if found is None:
        raise LookupError(f"Turn {turn_id} is not an answer.")


async def replace_answers_after(db: Db, user_turn_id: int) -> None:
    """Complete or stopped answers after the turn become `replaced`; failed and interrupted
    ones keep that more telling status."""
    await db.execute(
        "UPDATE turns SET status = 'replaced' WHERE role = 'assistant' "
        "AND status IN ('complete', 'stopped') AND id > $1 "
        "AND conversation_id = (SELECT conversation_id FROM turns WHERE id = $1)",
        user_turn_id,
    )
