"""`SQLiteStore`: the bot's `Store` on one SQLite file (or `:memory:`) through aiosqlite."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite

from storage.coordination import LocalCoordination
from storage.errors import StorageError
from storage.schema import SchemaTooNew
from storage.session import Dialect, Session
from storage.sqlite.connection import (
    RECLAIM_PAGES,
    SQLiteDialect,
    SQLiteSession,
    check_database_file,
    connect,
    make_space_reclaimable,
    unusable,
)
from storage.sqlite.migrations import apply_migrations
from storage.store import SQLStore


class SQLiteEngine:
    """One SQLite file (or `:memory:`) on one connection doing all the work, one operation
    at a time under a FIFO lock: SQLite has a single writer anyway, no operation ever sees
    another's transaction half done, and concurrent appends land in the order they were
    called."""

    dialect: Dialect = SQLiteDialect()

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect and migrate; every way the file can be unusable becomes a `StorageError`
        whose one sentence names the path."""
        if self.db is not None:
            return
        check_database_file(self.path)
        try:
            db = await connect(self.path)
        except sqlite3.Error as exc:
            raise unusable(self.path, exc) from exc
        try:
            await apply_migrations(db)
            await make_space_reclaimable(db)
        except BaseException as exc:
            await db.close()
            if isinstance(exc, SchemaTooNew):
                raise StorageError(
                    f"The database {self.path} was written by a newer phi4bot ({exc})."
                ) from exc
            if isinstance(exc, sqlite3.Error):
                raise unusable(self.path, exc) from exc
            raise
        self.db = db

    async def close(self) -> None:
        """Let running operations finish, then close; closing twice is harmless."""
        async with self._lock:
            db, self.db = self.db, None
            if db is None:
                return
            with contextlib.suppress(sqlite3.Error):
                await db.execute("PRAGMA optimize")
            await db.close()

    async def reclaim(self) -> None:
        """Up to `RECLAIM_PAGES` free pages go back to the file system (`auto_vacuum` is
        incremental, see `connect`). Run as a script: a plain statement would be stepped
        once, and free one page."""
        async with self._lock:
            if self.db is not None:
                await self.db.executescript(f"PRAGMA incremental_vacuum({RECLAIM_PAGES:d})")

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """The connection, for this operation alone until it ends."""
        async with self._lock:
            if self.db is None:
                raise StorageError(f"The store for {self.path} is not open.")
            yield SQLiteSession(self.db)


class SQLiteStore(SQLStore):
    """Conversations in one SQLite file, for one bot process. Every operation is one
    statement (atomic by itself) or one `BEGIN IMMEDIATE` transaction; see
    `storage.sqlite.connection` for what survives a crash."""

    def __init__(self, path: Path | str, *, max_attachment_bytes: int) -> None:
        self.path = Path(path)
        self._engine = SQLiteEngine(self.path)
        super().__init__(
            self._engine,
            max_attachment_bytes=max_attachment_bytes,
            owner=None,
            coordination=LocalCoordination,
        )

    @property
    def _db(self) -> aiosqlite.Connection | None:
        """The open connection, for tests that look beneath the store."""
        return self._engine.db
