"""Opening one SQLite connection the way the store needs it, and its transactions.

Durability: the journal is WAL with `synchronous=NORMAL`. A committed transaction survives
the process being killed at any moment (the WAL is in the OS's hands once `COMMIT` returns),
but the last commits before a power loss or kernel crash may be lost; the database stays
consistent either way. That trade keeps an append well under a millisecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite

from storage.errors import StorageError
from storage.url import MEMORY

BUSY_TIMEOUT_SECONDS = 5.0
_SQLITE_HEADER = b"SQLite format 3\x00"


def check_database_file(path: Path) -> None:
    """Refuse, in one sentence naming the path, a file SQLite could not use as a database,
    before SQLite gives a vaguer error later; create missing parent folders."""
    if path == MEMORY:
        return
    if path.is_dir():
        raise StorageError(f"The database path {path} is a directory, not a file.")
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"Cannot create the folder for the database {path}: {exc.strerror}."
            ) from exc
        return
    try:
        with path.open("rb") as file:
            header = file.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise StorageError(f"Cannot read the database file {path}: {exc.strerror}.") from exc
    if header and header != _SQLITE_HEADER:
        raise StorageError(f"The file {path} is not a SQLite database.")
    if not os.access(path, os.W_OK):
        raise StorageError(f"The database file {path} is read-only; phi4bot must write to it.")


async def connect(path: Path) -> aiosqlite.Connection:
    """A connection in autocommit mode (transactions are explicit) with WAL, foreign keys
    and a busy timeout, so another process holding the lock briefly is waited for."""
    db = await aiosqlite.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    except BaseException:
        await db.close()
        raise
    return db


@contextlib.asynccontextmanager
async def transaction(db: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """`BEGIN IMMEDIATE` … `COMMIT`, rolled back on any error or cancellation.

    IMMEDIATE takes the write lock up front, so a transaction never fails halfway for want of
    it. The rollback is shielded: it is queued behind any statement still running on the
    connection's thread, so the next transaction never starts inside this one.
    """
    await db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        await db.execute("COMMIT")
    except BaseException:
        await asyncio.shield(_rollback(db))
        raise


async def _rollback(db: aiosqlite.Connection) -> None:
    """Roll back if a transaction is still open (SQLite may have ended it itself)."""
    with contextlib.suppress(sqlite3.OperationalError):
        await db.execute("ROLLBACK")
