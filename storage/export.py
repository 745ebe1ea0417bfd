"""Whole-conversation and whole-database reads for people: the JSON export and chat stats."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import aiosqlite

from storage.models import ChatStats

EXPORT_FORMAT = "phi4bot.conversation"
EXPORT_VERSION = 1


class Row(Protocol):
    """A selected row as both engines return it: its columns by position."""

    def __getitem__(self, index: int, /) -> Any: ...


async def export_conversation(db: aiosqlite.Connection, conversation_id: int) -> dict[str, Any]:
    """Every turn, hidden ones included (failed, replaced …), since an export is an audit
    record; attachments appear as metadata with their SHA-256, never as bytes."""
    found = list(
        await db.execute_fetchall(
            "SELECT id, chat_id, thread_id, created_at FROM conversations WHERE id = ?",
            (conversation_id,),
        )
    )
    if not found:
        raise LookupError(f"There is no conversation {conversation_id}.")
    attachment_rows = await db.execute_fetchall(
        "SELECT a.turn_id, a.kind, a.mime_type, a.size, a.filename, a.sha256, "
        "a.telegram_file_id FROM turns t JOIN attachments a ON a.turn_id = t.id "
        "WHERE t.conversation_id = ? ORDER BY t.id, a.position",
        (conversation_id,),
    )
    turn_rows = await db.execute_fetchall(
        "SELECT id, role, text, message_id, sender_id, sender_name, reply_to, "
        "reply_message_ids, status, error, created_at, finished_at "
        "FROM turns WHERE conversation_id = ? ORDER BY id",
        (conversation_id,),
    )
    return export_document(found[0], attachment_rows, turn_rows, message_ids=json.loads, iso=_iso)


def export_document(
    conversation: Row,
    attachment_rows: Iterable[Row],
    turn_rows: Iterable[Row],
    *,
    message_ids: Callable[[Any], list[int]],
    iso: Callable[[Any], str | None],
) -> dict[str, Any]:
    """The export document from the rows both engines select alike; `message_ids` and `iso`
    read the two columns each engine stores in its own way."""
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


async def load_chat_stats(db: aiosqlite.Connection) -> list[ChatStats]:
    """One row per chat; `last_activity` is its newest turn (None if it never had one)."""
    rows = await db.execute_fetchall(
        "SELECT c.chat_id, count(DISTINCT c.id), "
        "coalesce(sum(t.role = 'user'), 0), coalesce(sum(t.role = 'assistant'), 0), "
        "coalesce(sum(t.status = 'failed'), 0), max(t.created_at) "
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
            last_activity=None if row[5] is None else datetime.fromtimestamp(row[5], UTC),
        )
        for row in rows
    ]


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()
