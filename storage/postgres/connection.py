"""Reaching PostgreSQL: the connection pool, and every way of failing to reach it worded once.

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
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import parse_qs, urlsplit

import asyncpg

from storage.errors import StorageError
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
