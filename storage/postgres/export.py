"""Whole-conversation and whole-database reads for people on PostgreSQL: the JSON export
(the same document as `storage.export`) and chat stats."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.export import export_document
from storage.models import ChatStats

if TYPE_CHECKING:
    from storage.postgres.connection import Db


async def export_conversation(db: Db, conversation_id: int) -> dict[str, Any]:
    """Every turn, hidden ones included; attachments as metadata with their SHA-256."""
    conversation = await db.fetchrow(
        "SELECT id, chat_id, thread_id, created_at FROM conversations WHERE id = $1",
        conversation_id,
    )
    if conversation is None:
        raise LookupError(f"There is no conversation {conversation_id}.")
    attachment_rows = await db.fetch(
        "SELECT a.turn_id, a.kind, a.mime_type, a.size, a.filename, a.sha256, "
        "a.telegram_file_id FROM turns t JOIN attachments a ON a.turn_id = t.id "
        "WHERE t.conversation_id = $1 ORDER BY t.id, a.position",
        conversation_id,
    )
    turn_rows = await db.fetch(
        "SELECT id, role, text, message_id, sender_id, sender_name, reply_to, "
        "reply_message_ids, status, error, created_at, finished_at "
        "FROM turns WHERE conversation_id = $1 ORDER BY id",
        conversation_id,
    )
    return export_document(conversation, attachment_rows, turn_rows, message_ids=list, iso=_iso)


async def load_chat_stats(db: Db) -> list[ChatStats]:
    """One row per chat; `last_activity` is its newest turn (None if it never had one)."""
    rows = await db.fetch(
        "SELECT c.chat_id, count(DISTINCT c.id), "
        "count(t.id) FILTER (WHERE t.role = 'user'), "
        "count(t.id) FILTER (WHERE t.role = 'assistant'), "
        "count(t.id) FILTER (WHERE t.status = 'failed'), max(t.created_at) "
        "FROM conversations c LEFT JOIN turns t ON t.conversation_id = c.id "
        "GROUP BY c.chat_id ORDER BY c.chat_id"
    )
    return [
        ChatStats(
            chat_id=row[0],
            conversations=row[1],
            user_turns=row[2],
            assistant_turns=row[3],
            failed_turns=row[4],
            last_activity=row[5],
        )
        for row in rows
    ]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
