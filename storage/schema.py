"""What both engines' migrations share: a step's record, and a schema too new to use.

Each engine keeps its own ordered list of steps (`storage.sqlite.migrations`,
`storage.postgres.migrations`) with the same names in the same order: version N means the
same tables on both engines.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from storage.errors import StorageError

Db = TypeVar("Db")

FIRST_INDEXES = (
    "CREATE INDEX conversations_by_key ON conversations (chat_id, thread_id, id)",
    "CREATE INDEX turns_by_conversation ON turns (conversation_id, id)",
    # Idempotency: a Telegram message becomes at most one user turn, whichever process
    # receives it (NULL message ids are distinct on both engines).
    "CREATE UNIQUE INDEX turns_by_message ON turns (chat_id, message_id)",
    "CREATE INDEX turns_streaming ON turns (status) WHERE status = 'streaming'",
    "CREATE INDEX turns_by_sender ON turns (sender_id, created_at) WHERE role = 'user'",
)
"""The first migration's indexes, the same on both engines."""

WAITING_INDEX = "CREATE INDEX turns_user_by_time ON turns (created_at) WHERE role = 'user'"
"""User turns by time, which `add_answer_owner` adds on both engines."""

RETENTION_INDEX = "CREATE INDEX attachments_by_blob ON attachments (sha256)"
"""Attachments by file, which `prepare_retention` adds on both engines: a file is deleted or
dropped only when no attachment (or no recent one) shows it."""


@dataclass(frozen=True, slots=True)
class Migration(Generic[Db]):
    """One schema step; `version` is its 1-based position, the version it leads to."""

    version: int
    name: str
    step: Callable[[Db], Awaitable[None]]


Step = TypeVar("Step", bound=Callable[..., Awaitable[None]])


def registrar(migrations: Callable[[], list[Migration[Any]]]) -> Callable[[Step], Step]:
    """An engine's `@migration` decorator: it adds each step, named after its function, at
    the end of the list `migrations()` returns (looked up at each use)."""

    def migration(step: Step) -> Step:
        found = migrations()
        found.append(Migration(len(found) + 1, step.__name__, step))
        return step

    return migration


class SchemaTooNew(StorageError):
    """The database was written by a newer phi4bot whose schema this one does not know."""

    def __init__(self, found: int, known: int) -> None:
        self.found = found
        self.known = known
        super().__init__(f"schema version {found} is newer than the {known} this phi4bot knows")
