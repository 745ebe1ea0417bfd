"""Whole-conversation and whole-database reads for people: the JSON export and chat stats."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from storage.models import ChatStats
from storage.session import Row, Session

EXPORT_FORMAT = "phi4bot.conversation"
EXPORT_VERSION = 1


async def export_conversation(db: Session, conversation_id: int) -> dict[str, Any]:
    """Every turn, hidden ones included (failed, replaced …), since an export is an audit
    record; attachments appear as metadata with their SHA-256, never as bytes."""
    conversation = await db.fetchrow(
        "SELECT id, chat_id, thread_id, created_at FROM conversations WHERE id = ?",
        conversation_id,
    )
    if conversation is None:
        raise LookupError(f"There is no conversation {conversation_id}.")
    attachment_rows = await db.fetch(
        "SELECT a.turn_id, a.kind, a.mime_type, a.size, a.filename, a.sha256, "
        "a.telegram_file_id FROM turns t JOIN attachments a ON a.turn_id = t.id "
        "WHERE t.conversation_id = ? ORDER BY t.id, a.position",
        conversation_id,
    )
    turn_rows = await db.fetch(
        "SELECT id, role, text, message_id, sender_id, sender_name, reply_to, "
        "reply_message_ids, status, error, created_at, finished_at "
        "FROM turns WHERE conversation_id = ? ORDER BY id",
        conversation_id,
    )
    dialect = db.dialect

    def iso(value: Any) -> str | None:
        return None if value is None else dialect.moment(value).isoformat()

    return export_document(
        conversation,
        attachment_rows,
        turn_rows,
        message_ids=lambda value: list(dialect.read_ids(value)),
        iso=iso,
    )


def export_document(
    conversation: Row,
    attachment_rows: Iterable[Row],
    turn_rows: Iterable[Row],
    *,
    message_ids: Callable[[Any], list[int]],
    iso: Callable[[Any], str | None],
) -> dict[str, Any]:
    """The export document from the selected rows; `message_ids` and `iso` read the two
    columns each engine stores in its own way."""
    attachments: dict[int, list[dict[str, Any]]] = {}
    for row in attachment_rows:
        attachments.setdefault(row[0], []).append(
            {
                "kind": row[1],
                "mime_type": row[2],
                "size": row[3],
                "filename": row[4],
                "sha256": row[5],
                "telegram_file_id": row[6],
            }
        )
    turns = [
        {
            "id": row[0],
            "role": row[1],
            "text": row[2],
            "sender": None if row[4] is None and row[5] is None else {"id": row[4], "name": row[5]},
            "status": row[8],
            "message_id": row[3],
            "reply_to": row[6],
            "reply_message_ids": message_ids(row[7]),
            "error": row[9],
            "created_at": iso(row[10]),
            "finished_at": iso(row[11]),
            "attachments": attachments.get(row[0], []),
        }
        for row in turn_rows
    ]
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "conversation": {
            "id": conversation[0],
            "chat_id": conversation[1],
            "thread_id": conversation[2],
            "created_at": iso(conversation[3]),
        },
        "turns": turns,
    }


async def load_chat_stats(db: Session) -> list[ChatStats]:
    """One row per chat; `last_activity` is its newest turn (None if it never had one)."""
    rows = await db.fetch(
        "SELECT c.chat_id, count(DISTINCT c.id), "
        "count(CASE WHEN t.role = 'user' THEN 1 END), "
        "count(CASE WHEN t.role = 'assistant' THEN 1 END), "
        "count(CASE WHEN t.status = 'failed' THEN 1 END), max(t.created_at) "
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
            last_activity=None if row[5] is None else db.dialect.moment(row[5]),
        )
        for row in rows
    ]
