"""Redoing answers: a conversation's newest answer read back, and an edited question rewritten."""

from __future__ import annotations

import json

import aiosqlite

from storage.models import AnswerRecord, AnswerStatus, EditedTurn


async def load_latest_answer(db: aiosqlite.Connection, conversation_id: int) -> AnswerRecord | None:
    """The newest answer of the conversation that was not replaced, whatever its status."""
    rows = list(
        await db.execute_fetchall(
            "SELECT a.id, a.reply_to, a.status, a.reply_message_ids, u.message_id, u.sender_id "
            "FROM turns a JOIN turns u ON u.id = a.reply_to "
            "WHERE a.conversation_id = ? AND a.role = 'assistant' AND a.status != 'replaced' "
            "ORDER BY a.id DESC LIMIT 1",
            (conversation_id,),
        )
    )
    if not rows:
        return None
    answer_id, user_turn_id, status, message_ids, user_message_id, sender_id = rows[0]
    return AnswerRecord(
        answer_turn_id=int(answer_id),
        user_turn_id=int(user_turn_id),
        status=AnswerStatus(status),
        message_ids=tuple(json.loads(message_ids)),
        user_message_id=user_message_id,
        sender_id=sender_id,
    )


async def rewrite_user_turn(
    db: aiosqlite.Connection, chat_id: int, message_id: int, text: str
) -> EditedTurn | None:
    """Give the user turn stored from message (chat_id, message_id) its new text; None when
    no turn came from that message (the bot never took it)."""
    rows = list(
        await db.execute_fetchall(
            "SELECT id, conversation_id, text FROM turns "
            "WHERE chat_id = ? AND message_id = ? AND role = 'user'",
            (chat_id, message_id),
        )
    )
    if not rows:
        return None
    turn_id, conversation_id, old_text = int(rows[0][0]), int(rows[0][1]), rows[0][2]
    changed = old_text != text
    if changed:
        await db.execute("UPDATE turns SET text = ? WHERE id = ?", (text, turn_id))
    later = list(
        await db.execute_fetchall(
            "SELECT 1 FROM turns WHERE conversation_id = ? AND role = 'user' AND id > ? LIMIT 1",
            (conversation_id, turn_id),
        )
    )
    answers = list(
        await db.execute_fetchall(
            "SELECT reply_message_ids FROM turns WHERE reply_to = ? AND role = 'assistant' "
            "AND status != 'replaced' ORDER BY id DESC LIMIT 1",
            (turn_id,),
        )
    )
    return EditedTurn(
        conversation_id=conversation_id,
        user_turn_id=turn_id,
        changed=changed,
        newest=not later,
        answer_message_ids=tuple(json.loads(answers[0][0])) if answers else (),
    )
