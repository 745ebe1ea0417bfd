"""Redoing answers: a conversation's newest answer read back, an edited question rewritten,
and a command claimed once."""

from __future__ import annotations

import time

from storage.models import COMMAND_CLAIM_DAYS, AnswerRecord, AnswerStatus, EditedTurn
from storage.session import Session


async def load_latest_answer(db: Session, conversation_id: int) -> AnswerRecord | None:
    """The newest answer of the conversation that was not replaced, whatever its status."""
    row = await db.fetchrow(
        "SELECT a.id, a.reply_to, a.status, a.reply_message_ids, u.message_id, u.sender_id "
        "FROM turns a JOIN turns u ON u.id = a.reply_to "
        "WHERE a.conversation_id = ? AND a.role = 'assistant' AND a.status != 'replaced' "
        "ORDER BY a.id DESC LIMIT 1",
        conversation_id,
    )
    if row is None:
        return None
    return AnswerRecord(
        answer_turn_id=int(row[0]),
        user_turn_id=int(row[1]),
        status=AnswerStatus(row[2]),
        message_ids=db.dialect.read_ids(row[3]),
        user_message_id=row[4],
        sender_id=row[5],
    )


async def rewrite_user_turn(
    db: Session, chat_id: int, message_id: int, text: str
) -> EditedTurn | None:
    """Give the user turn stored from message (chat_id, message_id) its new text; None when
    no turn came from that message (the bot never took it). One transaction, the turn's row
    locked meanwhile."""
    async with db.transaction():
        row = await db.fetchrow(
            "SELECT id, conversation_id, text FROM turns "
            f"WHERE chat_id = ? AND message_id = ? AND role = 'user'{db.dialect.for_update}",
            chat_id,
            message_id,
        )
        if row is None:
            return None
        turn_id, conversation_id = int(row[0]), int(row[1])
        changed = row[2] != text
        if changed:
            await db.execute("UPDATE turns SET text = ? WHERE id = ?", text, turn_id)
        later = await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM turns WHERE conversation_id = ? "
            "AND role = 'user' AND id > ?)",
            conversation_id,
            turn_id,
        )
        answer = await db.fetchval(
            "SELECT reply_message_ids FROM turns WHERE reply_to = ? AND role = 'assistant' "
            "AND status != 'replaced' ORDER BY id DESC LIMIT 1",
            turn_id,
        )
    return EditedTurn(
        conversation_id=conversation_id,
        user_turn_id=turn_id,
        changed=changed,
        newest=not later,
        answer_message_ids=() if answer is None else db.dialect.read_ids(answer),
    )


async def claim_command(db: Session, chat_id: int, message_id: int) -> bool:
    """True the first time, even when two processes claim at once (the primary key
    decides); claims older than `COMMAND_CLAIM_DAYS` are forgotten."""
    now = time.time()
    async with db.transaction():
        await db.execute(
            "DELETE FROM handled_commands WHERE handled_at < ?",
            db.dialect.time(now - COMMAND_CLAIM_DAYS * 86400),
        )
        claimed = await db.fetchval(
            "INSERT INTO handled_commands (chat_id, message_id, handled_at) "
            "VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING chat_id",
            chat_id,
            message_id,
            db.dialect.time(now),
        )
    return claimed is not None
