"""Reaching PostgreSQL: the connection pool, and every way of failing to reach it worded once.

The URL goes to asyncpg as it stands, so whatever libpq-style options it carries
(`?sslmode=require`, `?search_path=phi4bot`, `?application_name=...`) apply to every pooled
connection. Messages show the URL without its password.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from storage.errors import StorageError
from storage.url import redact

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Db: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
    """A connection of its own or one borrowed from the pool: the same methods either way."""

CONNECT_TIMEOUT_SECONDS = 10.0
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
            command_timeout=None,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise unreachable(url, exc) from exc
    except ValueError as exc:  # asyncpg's refusal of a malformed URL
        raise StorageError(f"DATABASE_URL is not a usable PostgreSQL URL: {exc}") from exc
    return pool


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
