"""Storage failures, each carrying the one sentence a person reads when it happens."""

from __future__ import annotations

import sqlite3
import sys
from enum import Enum


class StorageError(Exception):
    """The database cannot be used as configured; the message names the path or URL."""


class AttachmentTooLarge(StorageError):
    """An attachment exceeds the configured cap; refused before it reaches the database.

    `user_message` is fit to send to the chat as it stands.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        self.user_message = (
            f"That file is too large: I can keep attachments of up to {megabytes(limit)}."
        )
        super().__init__(self.user_message)


class TooManyWaiting(StorageError):
    """The sender already has `limit` messages waiting for an answer in the conversation:
    the new one is refused before it is stored, as a lane in memory refuses it."""

    def __init__(self, waiting: int, limit: int) -> None:
        self.waiting = waiting
        self.limit = limit
        super().__init__(f"{waiting} messages of the sender wait already (at most {limit})")


def megabytes(size: int) -> str:
    """Sizes as people say them: `20 MB`, `1.5 MB`, `300 KB`."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


class Unavailability(Enum):
    """Why the database cannot take an operation now, though it may in a moment."""

    LOCKED = "the database is locked by another writer"
    FULL = "the disk is full"
    READ_ONLY = "the database is read-only"
    DISK_ERROR = "the disk failed to read or write"
    UNREACHABLE = "the database server cannot be reached"
    TIMEOUT = "the database did not answer in time"


class StoreUnavailable(StorageError):
    """An operation failed for a reason that may pass (a lock, a full disk, a lost server):
    worth trying again. `reason` says which; the message adds the engine's own words."""

    def __init__(self, reason: Unavailability, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value} ({detail})" if detail else reason.value)


_SQLITE_REASONS = {
    sqlite3.SQLITE_BUSY: Unavailability.LOCKED,
    sqlite3.SQLITE_LOCKED: Unavailability.LOCKED,
    sqlite3.SQLITE_FULL: Unavailability.FULL,
    sqlite3.SQLITE_READONLY: Unavailability.READ_ONLY,
    sqlite3.SQLITE_IOERR: Unavailability.DISK_ERROR,
    sqlite3.SQLITE_CANTOPEN: Unavailability.DISK_ERROR,
}
"""Primary result codes (the low byte of an extended code) that may pass."""

_POSTGRES_STATES = {
    "08": Unavailability.UNREACHABLE,  # connection exception
    "53100": Unavailability.FULL,  # disk_full
    "53300": Unavailability.UNREACHABLE,  # too_many_connections
    "57P01": Unavailability.UNREACHABLE,  # admin_shutdown (a restart)
    "57P02": Unavailability.UNREACHABLE,  # crash_shutdown
    "57P03": Unavailability.UNREACHABLE,  # cannot_connect_now (starting up)
    "57014": Unavailability.TIMEOUT,  # query_canceled (statement_timeout)
    "25006": Unavailability.READ_ONLY,  # read_only_sql_transaction (a standby)
    "40001": Unavailability.LOCKED,  # serialization_failure
    "40P01": Unavailability.LOCKED,  # deadlock_detected
    "55P03": Unavailability.LOCKED,  # lock_not_available (lock_timeout)
}
"""SQLSTATEs (a class by its two characters, or one state) that may pass."""


def store_unavailable(exc: BaseException) -> StoreUnavailable | None:
    """`exc` as a `StoreUnavailable` when it is a failure that may pass, else None.

    Engine errors are read here, once, so the callers above the store retry without knowing
    which engine raised them.
    """
    if isinstance(exc, StoreUnavailable):
        return exc
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int):
            reason = _SQLITE_REASONS.get(code & 0xFF)
        elif isinstance(exc, sqlite3.OperationalError):
            reason = _sqlite_reason_from_text(str(exc))
        else:
            reason = None
        return None if reason is None else StoreUnavailable(reason, str(exc))
    if isinstance(exc, TimeoutError):
        return StoreUnavailable(Unavailability.TIMEOUT, str(exc) or type(exc).__name__)
    if isinstance(exc, OSError):
        return StoreUnavailable(Unavailability.UNREACHABLE, exc.strerror or type(exc).__name__)
    return _postgres_unavailable(exc)


def refers_to_missing_row(exc: BaseException) -> bool:
    """Whether `exc` is a foreign-key violation: a row written to refer to one that is gone.

    Tried again it fails again, so it is no `StoreUnavailable`; the one place it can arise in
    the bot's own use (a message arriving into the conversation retention deletes at that
    moment, on PostgreSQL) is handled where the turn is written (`storage.conversations`).
    """
    if isinstance(exc, sqlite3.IntegrityError):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
        return "FOREIGN KEY constraint failed" in str(exc)
    asyncpg = sys.modules.get("asyncpg")
    return (
        asyncpg is not None
        and isinstance(exc, asyncpg.PostgresError)
        and getattr(exc, "sqlstate", None) == "23503"  # foreign_key_violation
    )


def _sqlite_reason_from_text(text: str) -> Unavailability | None:
    """For errors raised without a result code (not by SQLite itself): read their words."""
    text = text.lower()
    if "locked" in text or "busy" in text:
        return Unavailability.LOCKED
    if "full" in text:
        return Unavailability.FULL
    if "readonly" in text or "read-only" in text:
        return Unavailability.READ_ONLY
    if "disk i/o" in text:
        return Unavailability.DISK_ERROR
    return None


def _postgres_unavailable(exc: BaseException) -> StoreUnavailable | None:
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:  # never imported: the error cannot be one of its
        return None
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        reason = _POSTGRES_STATES.get(state) or _POSTGRES_STATES.get(state[:2])
        return None if reason is None else StoreUnavailable(reason, detail)
    if isinstance(exc, asyncpg.InterfaceError) and ("closed" in detail or "released" in detail):
        # a connection lost: closed, or taken back by the pool when the server closed it
        return StoreUnavailable(Unavailability.UNREACHABLE, detail)
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # a server closing the connection (a restart) while a query starts on it
        return StoreUnavailable(Unavailability.UNREACHABLE, detail)
    return None
