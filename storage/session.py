"""The seam between the store and an engine: a narrow session, and the dialect it speaks.

`storage.store.SQLStore` writes every operation once against these two. An engine
(`storage.sqlite`, `storage.postgres`) supplies a `Session` for each operation and a
`Dialect` for the few things the two SQL dialects say differently: how a time and a list of
message ids are kept, how a list of values is matched, which rows a dead process left
streaming, how a row or a key is locked. The SQL itself is written with `?` placeholders;
an engine numbering its parameters (`$1`, `$2`, …) renumbers them in its session.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from storage.models import ConversationKey

Row = tuple[Any, ...]
"""A selected row: its columns by position."""

Observer = Callable[[str, float], None]
"""Told of every store operation once it ends: its name and how long it took in seconds."""


class Session(Protocol):
    """One connection, lent to one store operation until it ends."""

    dialect: Dialect

    async def execute(self, sql: str, *args: object) -> None:
        """Run one statement, reading nothing back."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement once per row of parameters."""

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        """Every row the statement returns."""

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        """The statement's first row, or None."""

    async def fetchval(self, sql: str, *args: object) -> Any:
        """The first column of the first row, or None when there is no row."""

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Everything inside commits together, or not at all (on an error or cancellation);
        a transaction opened inside another joins it."""


class Dialect(Protocol):
    """What the engines say differently; everything else is the same SQL."""

    name: str
    """`sqlite` or `postgresql`."""

    ids_type: str
    """The SQL type a list of message ids is kept as (for a `CAST`)."""

    for_update: str
    """Appended to a SELECT whose rows the transaction is about to change: a row lock where
    the engine has them ("" where the transaction's write lock covers it)."""

    distinct: str
    """The operator comparing two values where NULL equals NULL and differs from any value."""

    def time(self, epoch: float) -> object:
        """A moment as the engine keeps it in its time columns."""

    def moment(self, value: Any) -> datetime:
        """A value read from a time column, as an aware UTC datetime."""

    def ids(self, message_ids: Sequence[int]) -> object:
        """A list of message ids as the engine keeps it."""

    def read_ids(self, value: Any) -> tuple[int, ...]:
        """A list of message ids read back."""

    def any_of(self, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
        """A condition matching the rows whose `column` is one of `values`, and its
        parameters."""

    def gone_owner(self) -> tuple[str, list[object]]:
        """A condition on `turns` true for a streaming answer whose writing process is gone,
        and its parameters."""

    async def lock_key(self, session: Session, key: ConversationKey) -> None:
        """Inside a transaction: take turns with other processes creating the key's first
        conversation, or counting a sender's waiting turns there before adding one."""

    async def table_sizes(self, session: Session, tables: Sequence[str]) -> dict[str, int]:
        """Bytes on disk of each table with its indexes, where the engine can tell."""

    def after_copy(self, identity_tables: Sequence[str], tables: Sequence[str]) -> list[str]:
        """Statements to run once rows were copied in with their ids (`phi4bot db copy`):
        ids the database gives next continue after the copied ones."""


class Engine(Protocol):
    """A database the store runs over: connected, migrated, and lending sessions."""

    dialect: Dialect

    async def open(self) -> None:
        """Connect and migrate; raise `StorageError` with one sentence naming the database."""

    async def close(self) -> None:
        """Wait for running operations, then close; closing twice is harmless."""

    def session(self) -> AbstractAsyncContextManager[Session]:
        """A session for one operation; `StorageError` when the engine is not open."""

    async def reclaim(self) -> None:
        """After rows were deleted: give the freed space back to the file system where the
        engine does not do that by itself."""


@contextlib.asynccontextmanager
async def timed(engine: Engine, name: str, observer: Observer | None) -> AsyncIterator[Session]:
    """`engine.session()`, with the operation's time (waiting for the session included)
    told to `observer` when it ends, whether it succeeded or not."""
    started = time.perf_counter()
    try:
        async with engine.session() as session:
            yield session
    finally:
        if observer is not None:
            observer(name, time.perf_counter() - started)
