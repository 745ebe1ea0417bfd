"""Conversation storage: the `Store` interface, written once over SQLite or PostgreSQL."""

from __future__ import annotations

from storage.base import Store
from storage.coordination import Coordination, LocalCoordination, WaitingTurn
from storage.errors import (
    AttachmentTooLarge,
    StorageError,
    StoreUnavailable,
    TooManyWaiting,
    Unavailability,
    megabytes,
    store_unavailable,
)
from storage.models import (
    AnswerCheckpoint,
    AnswerRecord,
    AnswerStatus,
    ChatStats,
    ConversationKey,
    DatabaseStats,
    EditedTurn,
    Forgotten,
    HeldMessage,
    HistoryTurn,
    NewAttachment,
    PendingAnswer,
    PromptInputs,
    RecordedTurn,
    StoredAttachment,
    TableSize,
)
from storage.session import Observer
from storage.sqlite import SQLiteStore
from storage.store import SQLStore
from storage.url import database_engine, parse_database_url


def store_for(
    database_url: str,
    *,
    max_attachment_bytes: int,
    instance_id: str | None = None,
    observer: Observer | None = None,
) -> Store:
    """The store `DATABASE_URL` names, not yet opened: its scheme picks the engine
    (`sqlite:///…` or `postgresql://…`). Raises `StorageError` for any other URL.
    `instance_id` names this process among those sharing a PostgreSQL database;
    `observer` is told every operation's name and time (for metrics)."""
    store: SQLStore
    if database_engine(database_url) == "postgresql":
        from storage.postgres import PostgresStore

        store = PostgresStore(
            database_url.strip(),
            max_attachment_bytes=max_attachment_bytes,
            instance_id=instance_id,
        )
    else:
        store = SQLiteStore(
            parse_database_url(database_url), max_attachment_bytes=max_attachment_bytes
        )
    store.observe(observer)
    return store


async def open_store(
    database_url: str,
    *,
    max_attachment_bytes: int,
    instance_id: str | None = None,
    observer: Observer | None = None,
) -> Store:
    """The store `DATABASE_URL` names, opened and migrated; the caller closes it.

    Raises `StorageError` (one sentence naming the path, or the server without its password)
    when it cannot be used.
    """
    store = store_for(
        database_url,
        max_attachment_bytes=max_attachment_bytes,
        instance_id=instance_id,
        observer=observer,
    )
    await store.open()
    return store


__all__ = [
    "AnswerCheckpoint",
    "AnswerRecord",
    "AnswerStatus",
    "AttachmentTooLarge",
    "ChatStats",
    "ConversationKey",
    "Coordination",
    "DatabaseStats",
    "EditedTurn",
    "Forgotten",
    "HeldMessage",
    "HistoryTurn",
    "LocalCoordination",
    "NewAttachment",
    "Observer",
    "PendingAnswer",
    "PromptInputs",
    "RecordedTurn",
    "SQLStore",
    "SQLiteStore",
    "StorageError",
    "Store",
    "StoreUnavailable",
    "StoredAttachment",
    "TableSize",
    "TooManyWaiting",
    "Unavailability",
    "WaitingTurn",
    "database_engine",
    "megabytes",
    "open_store",
    "parse_database_url",
    "store_for",
    "store_unavailable",
]
