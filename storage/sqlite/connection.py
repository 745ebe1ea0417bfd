"""SQLite: one connection opened the way the store needs it, its transactions, and the
session and dialect the store runs over.

Durability: the journal is WAL with `synchronous=NORMAL`. A committed transaction survives
the process being killed at any moment (the WAL is in the OS's hands once `COMMIT` returns),
but the last commits before a power loss or kernel crash may be lost; the database stays
consistent either way. That trade keeps an append well under a millisecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from storage.errors import StorageError
from storage.models import ConversationKey
from storage.session import Dialect, Row, Session
from storage.url import MEMORY

BUSY_TIMEOUT_SECONDS = 5.0
INCREMENTAL_VACUUM = 2  # what `PRAGMA auto_vacuum` reads for INCREMENTAL
RECLAIM_PAGES = 2048
"""Pages (4 KiB each by default) given back to the file system after one retention batch:
a batch frees a few megabytes at most, and a bounded step keeps the write lock short."""
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
    and a busy timeout, so another process holding the lock briefly is waited for. A new
    file is made with incremental `auto_vacuum`, so space retention frees can be given back
    (see `make_space_reclaimable`)."""
    db = await aiosqlite.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        await db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    except BaseException:
        await db.close()
        raise
    return db


async def make_space_reclaimable(db: aiosqlite.Connection) -> None:
    """A file made before incremental `auto_vacuum` was asked for is rewritten once (`VACUUM`
    applies the setting), so later retention can give freed pages back a few at a time."""
    rows = list(await db.execute_fetchall("PRAGMA auto_vacuum"))
    if int(rows[0][0]) != INCREMENTAL_VACUUM:
        await db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        await db.execute("VACUUM")


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


def unusable(path: Path, exc: sqlite3.Error) -> StorageError:
    """One sentence naming the path, in words a person deploying the bot can act on."""
    reason = str(exc).rstrip(".")
    if "file is not a database" in reason:
        return StorageError(f"The file {path} is not a SQLite database.")
    return StorageError(f"Cannot use the database {path}: {reason}.")


class SQLiteDialect:
    """SQLite's words: times as epoch seconds, message ids as JSON text, one writer."""

    name = "sqlite"
    ids_type = "TEXT"
    for_update = ""  # `BEGIN IMMEDIATE` already holds the only write lock
    distinct = "IS NOT"

    def time(self, epoch: float) -> object:
        return epoch

    def moment(self, value: Any) -> datetime:
        return datetime.fromtimestamp(value, UTC)

    def ids(self, message_ids: Sequence[int]) -> object:
        return json.dumps(list(message_ids))

    def read_ids(self, value: Any) -> tuple[int, ...]:
        return tuple(json.loads(value))

    def any_of(self, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    def gone_owner(self) -> tuple[str, list[object]]:
        """One process uses the file: an answer still streaming is a dead one's."""
        return "1 = 1", []

    async def lock_key(self, session: Session, key: ConversationKey) -> None:
        """Nothing to take: the transaction's write lock keeps every other writer out."""

    async def table_sizes(self, session: Session, tables: Sequence[str]) -> dict[str, int]:
        """From the `dbstat` table, where this SQLite has it."""
        try:
            rows = await session.fetch(
                "SELECT s.tbl_name, sum(d.pgsize) FROM dbstat d "
                "JOIN sqlite_schema s ON s.name = d.name GROUP BY s.tbl_name"
            )
        except sqlite3.OperationalError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
            return {}
        return {str(name): int(size) for name, size in rows if name in tables}

    def after_copy(self, identity_tables: Sequence[str], tables: Sequence[str]) -> list[str]:
        """Nothing: SQLite gives a new row the largest id plus one by itself."""
        return []


class SQLiteSession:
    """`storage.session.Session` over the one aiosqlite connection."""

    dialect: Dialect = SQLiteDialect()

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._depth = 0

    async def execute(self, sql: str, *args: object) -> None:
        await self._db.execute(sql, args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await self._db.executemany(sql, rows)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return [tuple(row) for row in await self._db.execute_fetchall(sql, args)]

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: object) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._depth:
            yield
            return
        self._depth += 1
        try:
            async with transaction(self._db):
                yield
        finally:
            self._depth -= 1
