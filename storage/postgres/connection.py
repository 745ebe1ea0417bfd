"""Reaching PostgreSQL: the connection pool, every way of failing to reach it worded once,
and the session and dialect the store runs over.

The URL goes to asyncpg as it stands, so whatever libpq-style options it carries
(`?sslmode=require`, `?search_path=phi4bot`, `?application_name=...`) apply to every pooled
connection. Messages show the URL without its password.

No operation waits without bound: a statement the server runs longer than
`STATEMENT_TIMEOUT_SECONDS` is cancelled by the server (`statement_timeout`, unless the URL
sets its own), a command with no answer at all (a hung server, a silent network) is given up
by the client after `COMMAND_TIMEOUT_SECONDS`, and waiting for a pooled connection (or a new
one) ends after `ACQUIRE_TIMEOUT_SECONDS`. The pool keeps nothing across a lost connection: a
connection the server closed (a restart) or the network dropped is discarded on its next use,
and the next acquire connects afresh, so the pool recovers by itself when the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias, cast
from urllib.parse import parse_qs, urlsplit

import asyncpg

from storage.errors import StorageError
from storage.models import ConversationKey
from storage.postgres.locks import LockNamespace, conversation_lock_key
from storage.session import Dialect, Row, Session
from storage.url import redact

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Db: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
    """A connection of its own or one borrowed from the pool: the same methods either way."""

CONNECT_TIMEOUT_SECONDS = 10.0
STATEMENT_TIMEOUT_SECONDS = 30.0
COMMAND_TIMEOUT_SECONDS = 35.0
"""A little longer than the server's own limit, so a slow statement is cancelled cleanly by
the server (the connection stays usable) and only a server that answers nothing hits this."""
ACQUIRE_TIMEOUT_SECONDS = 15.0
"""Waiting for a free pooled connection, connecting included (`CONNECT_TIMEOUT_SECONDS`)."""
POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10
"""Ten connections serve one process's lanes; several processes sharing one server stay well
under PostgreSQL's default `max_connections` of 100."""


async def create_pool(url: str) -> asyncpg.Pool:
    """A pool with one connection made at once, so an unreachable server, a missing database
    or a refused login is reported at start-up as one sentence, not at the first message."""
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=POOL_MIN_SIZE,
            max_size=POOL_MAX_SIZE,
            timeout=CONNECT_TIMEOUT_SECONDS,
            command_timeout=COMMAND_TIMEOUT_SECONDS,
            server_settings=_bounded_statements(url),
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise unreachable(url, exc) from exc
    except ValueError as exc:  # asyncpg's refusal of a malformed URL
        raise StorageError(f"DATABASE_URL is not a usable PostgreSQL URL: {exc}") from exc
    return pool


def _bounded_statements(url: str) -> dict[str, str]:
    """The server-side statement limit, unless the URL's query sets one (which then wins)."""
    if "statement_timeout" in parse_qs(urlsplit(url).query):
        return {}
    return {"statement_timeout": str(int(STATEMENT_TIMEOUT_SECONDS * 1000))}


@contextlib.asynccontextmanager
async def unbounded_connection(url: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """A connection of its own without the pool's time limits, for migrations: a step may
    rewrite a big table, and waiting for another process's migration may take as long."""
    db = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        yield db
    finally:
        await db.close()


def unreachable(url: str, exc: BaseException) -> StorageError:
    """One sentence naming the server (never its password) and what went wrong, in words a
    person deploying the bot can act on."""
    where = redact(url)
    if isinstance(exc, socket.gaierror):
        reason = "its host name does not resolve"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "the connection was refused (is the server running, on that port?)"
    elif isinstance(exc, TimeoutError | asyncio.TimeoutError):
        reason = f"no answer within {CONNECT_TIMEOUT_SECONDS:g} seconds"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        reason = "that database does not exist (create it first)"
    elif isinstance(
        exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        reason = f"the login was refused: {_sentence(exc)}"
    elif isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror[0].lower() + exc.strerror[1:]
    else:
        reason = _sentence(exc) or type(exc).__name__
    return StorageError(f"Cannot reach PostgreSQL at {where}: {reason}.")


def unusable(url: str, exc: BaseException) -> StorageError:
    """The server answered but refused what the store needs (creating its tables, say)."""
    reason = _sentence(exc) or type(exc).__name__
    return StorageError(f"Cannot use the PostgreSQL database {redact(url)}: {reason}.")


def _sentence(exc: BaseException) -> str:
    return str(exc).strip().rstrip(".").splitlines()[0] if str(exc).strip() else ""


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1`, `$2`, … (the store's SQL has no `?` of its
    own in literals)."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


class PostgresDialect:
    """PostgreSQL's words: `timestamptz` times, `bigint[]` message ids, row and advisory
    locks shared by every process on the database."""

    name = "postgresql"
    ids_type = "BIGINT[]"
    for_update = " FOR UPDATE"
    distinct = "IS DISTINCT FROM"

    def time(self, epoch: float) -> object:
        """This process's clock, as SQLite's store uses it, so quotas compare like with like."""
        return datetime.fromtimestamp(epoch, UTC)

    def moment(self, value: Any) -> datetime:
        return cast(datetime, value)

    def ids(self, message_ids: Sequence[int]) -> object:
        return list(message_ids)

    def read_ids(self, value: Any) -> tuple[int, ...]:
        return tuple(int(i) for i in value)

    def any_of(self, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
        return f"{column} = ANY(?)", [list(values)]

    def gone_owner(self) -> tuple[str, list[object]]:
        """The answer's writer no longer holds the advisory lock on its instance id (see
        `storage.postgres.locks`): its process died, or lost its connection. Answers without
        an owner were written before owners were recorded, by a process that is gone."""
        return (
            "NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.objsubid = 2 AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid = ?::bigint::oid "
            "AND l.objid = (hashtext(turns.owner)::bigint & 4294967295)::oid)",
            [int(LockNamespace.INSTANCE)],
        )

    async def lock_key(self, session: Session, key: ConversationKey) -> None:
        """The key's transaction-level advisory lock: processes creating its first
        conversation, or storing a turn under a sender's cap, take turns."""
        namespace, lock = conversation_lock_key(LockNamespace.CONVERSATION_CREATION, key)
        await session.execute("SELECT pg_advisory_xact_lock(?, ?)", namespace, lock)

    async def table_sizes(self, session: Session, tables: Sequence[str]) -> dict[str, int]:
        rows = await session.fetch(
            "SELECT c.relname::text, pg_total_relation_size(c.oid) FROM pg_class c "
            "WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace "
            "AND c.relname = ANY(?::text[])",
            list(tables),
        )
        return {str(name): int(size) for name, size in rows}

    def after_copy(self, identity_tables: Sequence[str], tables: Sequence[str]) -> list[str]:
        """Identity sequences continue after the largest copied id, so the next turn the
        bot stores does not collide with a copied one; and the planner learns how large the
        tables now are (until then it plans for empty ones, and reading a long history
        would sort the whole conversation)."""
        return [
            *(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {name}), false)"
                for name in identity_tables
            ),
            f"ANALYZE {', '.join(tables)}",
        ]


class PostgresSession:
    """`storage.session.Session` over one pooled asyncpg connection."""

    dialect: Dialect = PostgresDialect()

    def __init__(self, db: Db) -> None:
        self._db = db

    async def execute(self, sql: str, *args: object) -> None:
        await self._db.execute(numbered(sql), *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await self._db.executemany(numbered(sql), rows)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return [tuple(row) for row in await self._db.fetch(numbered(sql), *args)]

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        row = await self._db.fetchrow(numbered(sql), *args)
        return None if row is None else tuple(row)

    async def fetchval(self, sql: str, *args: object) -> Any:
        return await self._db.fetchval(numbered(sql), *args)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._db.transaction():
            yield
