"""Conversation storage: the `Store` interface and its SQLite implementation."""

from storage.base import Store
from storage.models import (
    AnswerStatus,
    ChatStats,
    ConversationKey,
    HistoryTurn,
    NewAttachment,
    PendingAnswer,
    StoredAttachment,
)

__all__ = [
    "AnswerStatus",
    "ChatStats",
    "ConversationKey",
    "HistoryTurn",
    "NewAttachment",
    "PendingAnswer",
    "Store",
    "StoredAttachment",
]
