"""Writing turns: a user's message with its media, and the answer's life from start to end.

Several processes may append to one conversation at once (on PostgreSQL). Idempotency rests
on the unique (chat_id, message_id) index, which the engine enforces across transactions: of
two processes storing the same message, one gets the turn's id and the other None. Blobs and
checkpoints are written in key order, so two writers sharing rows never deadlock.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence

from storage.errors import AttachmentTooLarge
from storage.models import AnswerCheckpoint, AnswerStatus, NewAttachment
from storage.session import Session

FINAL_STATUSES = frozenset(
    {AnswerStatus.COMPLETE, AnswerStatus.FAILED, AnswerStatus.STOPPED, AnswerStatus.INTERRUPTED}
)
_HASH_IN_THREAD_BYTES = 1024 * 1024

INSERT_USER_TURN = (
    "INSERT INTO turns (conversation_id, role, text, chat_id, message_id, sender_id, "
    "sender_name, created_at) VALUES (?, 'user', ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
_CHECKPOINTS_PER_STATEMENT = 500  # three parameters each, well under either engine's limit


async def check_and_hash(attachments: Sequence[NewAttachment], max_bytes: int) -> list[str]:
    """Refuse an oversized or unknown attachment before anything is written, then return
    each one's SHA-256 (large files hashed off the event loop)."""
    for attachment in attachments:
        if attachment.kind not in ("image", "audio"):
            raise ValueError(f"Unknown attachment kind {attachment.kind!r}.")
        if len(attachment.data) > max_bytes:
            raise AttachmentTooLarge(len(attachment.data), max_bytes)
    hashes = []
    for attachment in attachments:
        if len(attachment.data) >= _HASH_IN_THREAD_BYTES:
            hashes.append(await asyncio.to_thread(_sha256, attachment.data))
        else:
            hashes.append(_sha256(attachment.data))
    return hashes


async def insert_user_turn(
    db: Session,
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
    """The new turn's id, or None when the unique (chat_id, message_id) says it was stored
    before. A text turn is one statement; a turn with media is one transaction, so the
    turn never exists without its attachments."""
    now = db.dialect.time(time.time())
    values = (conversation_id, text, chat_id, message_id, sender_id, sender_name, now)
    if not attachments:
        found = await db.fetchval(INSERT_USER_TURN, *values)
        return None if found is None else int(found)
    async with db.transaction():
        return await write_user_turn(db, values, attachments, hashes)


async def write_user_turn(
    db: Session,
    values: tuple[object, ...],
    attachments: Sequence[NewAttachment],
    hashes: Sequence[str],
) -> int | None:
    """Inside the caller's transaction: the turn row, then its media (each blob once; a file
    whose bytes retention dropped gets them back)."""
    found = await db.fetchval(INSERT_USER_TURN, *values)
    if found is None:
        return None
    turn_id = int(found)
    if not attachments:
        return turn_id
    pairs = list(zip(attachments, hashes, strict=True))
    blobs = {sha: attachment.data for attachment, sha in pairs}
    await db.executemany(
        "INSERT INTO blobs (sha256, size, data) VALUES (?, ?, ?) ON CONFLICT (sha256) "
        "DO UPDATE SET data = excluded.data, dropped_at = NULL WHERE blobs.dropped_at IS NOT NULL",
        [(sha, len(data), data) for sha, data in sorted(blobs.items())],
    )
    await db.executemany(
        "INSERT INTO attachments (turn_id, position, kind, mime_type, size, filename, "
        "telegram_file_id, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (turn_id, n, a.kind, a.mime_type, len(a.data), a.filename, a.telegram_file_id, sha)
            for n, (a, sha) in enumerate(pairs)
        ],
    )
    return turn_id


async def insert_answer(
    db: Session, conversation_id: int, user_turn_id: int, owner: str | None
) -> int:
    """An assistant turn in status `streaming`, answering a user turn of that conversation,
    written by the process whose instance id is `owner` (None where one process is alone)."""
    found = await db.fetchval(
        "INSERT INTO turns (conversation_id, role, text, reply_to, status, created_at, owner) "
        "SELECT conversation_id, 'assistant', '', id, 'streaming', ?, ? FROM turns "
        "WHERE id = ? AND conversation_id = ? AND role = 'user' RETURNING id",
        db.dialect.time(time.time()),
        owner,
        user_turn_id,
        conversation_id,
    )
    if found is None:
        raise LookupError(
            f"Turn {user_turn_id} is not a user turn of conversation {conversation_id}."
        )
    return int(found)


async def save_progress_of_many(db: Session, checkpoints: Sequence[AnswerCheckpoint]) -> None:
    """Every checkpoint in one statement (one transaction for a very long list), each only
    while its answer is still streaming: a checkpoint taken before an answer finished may
    reach the database after it, and must not undo its end."""
    if not checkpoints:
        return
    ordered = sorted(checkpoints, key=lambda c: c.answer_id)
    chunks = [
        ordered[n : n + _CHECKPOINTS_PER_STATEMENT]
        for n in range(0, len(ordered), _CHECKPOINTS_PER_STATEMENT)
    ]
    if len(chunks) == 1:
        await _save_chunk(db, chunks[0])
        return
    async with db.transaction():
        for chunk in chunks:
            await _save_chunk(db, chunk)


async def _save_chunk(db: Session, checkpoints: Sequence[AnswerCheckpoint]) -> None:
    row = f"(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS {db.dialect.ids_type}))"
    values = [
        value for c in checkpoints for value in (c.answer_id, c.text, db.dialect.ids(c.message_ids))
    ]
    await db.execute(
        f"WITH progress (id, text, ids) AS (VALUES {', '.join([row] * len(checkpoints))}) "
        "UPDATE turns SET text = progress.text, reply_message_ids = progress.ids "
        "FROM progress WHERE turns.id = progress.id "
        "AND turns.role = 'assistant' AND turns.status = 'streaming'",
        *values,
    )


async def finish(
    db: Session,
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
        "UPDATE turns SET text = ?, status = ?, reply_message_ids = ?, error = ?, "
        "finished_at = ? WHERE id = ? AND role = 'assistant' RETURNING id",
        text,
        str(status),
        db.dialect.ids(message_ids),
        error,
        db.dialect.time(time.time()),
        turn_id,
    )
    if found is None:
        raise LookupError(f"Turn {turn_id} is not an answer.")


async def replace_answers_after(db: Session, user_turn_id: int) -> None:
    """Complete or stopped answers after the turn become `replaced`; failed and interrupted
    ones keep that more telling status (history leaves them out anyway)."""
    await db.execute(
        "UPDATE turns SET status = 'replaced' WHERE role = 'assistant' "
        "AND status IN ('complete', 'stopped') AND id > ? "
        "AND conversation_id = (SELECT conversation_id FROM turns WHERE id = ?)",
        user_turn_id,
        user_turn_id,
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
