"""`PostgresStore`: the bot's `Store` on a PostgreSQL database through an asyncpg pool."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import asyncpg

from storage.coordination import default_instance_id
from storage.errors import StorageError
from storage.postgres.connection import (
    ACQUIRE_TIMEOUT_SECONDS,
    PostgresDialect,
    PostgresSession,
    create_pool,
    unbounded_connection,
    unreachable,
    unusable,
)
from storage.postgres.coordination import PostgresCoordination
from storage.postgres.migrations import apply_migrations
from storage.schema import SchemaTooNew
from storage.session import Dialect, Session
from storage.store import SQLStore
from storage.url import redact

if TYPE_CHECKING:
    from storage.postgres.connection import Db


class PostgresEngine:
    """A PostgreSQL database, shared safely by several processes. Each operation borrows a
    pooled connection, so operations of different conversations run in parallel, at
    PostgreSQL's default isolation, READ COMMITTED; the unique indexes and advisory locks
    (see `storage.postgres.locks`) make concurrent appends safe across processes. Appends
    in one conversation land in the order they commit, which is the order they were called
    in as long as the caller awaits each before the next (as the bot's lanes do)."""

    dialect: Dialect = PostgresDialect()

    def __init__(self, url: str) -> None:
        self.url = url
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        """Connect and migrate; an unreachable server, a refused login or a schema from a
        newer phi4bot becomes a `StorageError` whose one sentence names the server."""
        if self.pool is not None:
            return
        pool = await create_pool(self.url)
        try:
            async with unbounded_connection(self.url) as db:
                await apply_migrations(db)
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, SchemaTooNew):
                raise StorageError(
                    f"The database {redact(self.url)} was written by a newer phi4bot ({exc})."
                ) from exc
            if isinstance(exc, OSError | asyncpg.InterfaceError):
                raise unreachable(self.url, exc) from exc
            if isinstance(exc, asyncpg.PostgresError):
                raise unusable(self.url, exc) from exc
            raise
        self.pool = pool

    async def close(self) -> None:
        """Let running operations give their connections back, then close the pool."""
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Db]:
        """A pooled connection, for this operation alone until it ends."""
        if self.pool is None:
            raise StorageError(f"The store for {redact(self.url)} is not open.")
        async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as db:
            yield db

    async def reclaim(self) -> None:
        """Nothing to do: autovacuum makes deleted rows' space reusable by itself."""

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        async with self.connection() as db:
            yield PostgresSession(db)


class PostgresStore(SQLStore):
    """Conversations in a PostgreSQL database, for one or several bot processes; the
    answers this store starts are owned by its instance id (see `coordination`)."""

    def __init__(
        self, url: str, *, max_attachment_bytes: int, instance_id: str | None = None
    ) -> None:
        self.url = url
        self.instance_id = instance_id or default_instance_id()
        self._engine = PostgresEngine(url)
        super().__init__(
            self._engine,
            max_attachment_bytes=max_attachment_bytes,
            owner=self.instance_id,
            coordination=self._coordinate,
        )

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)!r})"

    def _coordinate(self) -> PostgresCoordination:
        """Leases and wake-ups shared with the other processes on this database."""
        return PostgresCoordination(
            self.url, self.instance_id, self._engine.connection, self.orphaned_answers
        )

    @property
    def _pool(self) -> asyncpg.Pool | None:
        """The open pool, for tests that look beneath the store."""
        return self._engine.pool
