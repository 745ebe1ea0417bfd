"""Conversation storage: the `Store` interface and its SQLite implementation."""

from __future__ import annotations

from storage.base import Store
from storage.errors import AttachmentTooLarge, StorageError
from storage.models import (
    AnswerStatus,
    ChatStats,
    ConversationKey,
    HistoryTurn,
    NewAttachment,
    PendingAnswer,
    StoredAttachment,
)
from storage.sqlite import SQLiteStore
from storage.url import parse_database_url


async def open_store(database_url: str, *, max_attachment_bytes: int) -> Store:
    """The store `DATABASE_URL` names, opened and migrated; the caller closes it.

    Raises `StorageError` (one sentence naming the URL or path) when it cannot be used.
    """
    store = SQLiteStore(parse_database_url(database_url), max_attachment_bytes=max_attachment_bytes)
    await store.open()
    return store


__all__ = [
    "AnswerStatus",
    "AttachmentTooLarge",
    "ChatStats",
    "ConversationKey",
    "HistoryTurn",
    "NewAttachment",
    "PendingAnswer",
    "SQLiteStore",
    "StorageError",
    "Store",
    "StoredAttachment",
    "open_store",
    "parse_database_url",
]
