"""`phi4bot db copy`: move a deployment's data from one database to another, and prove it.

Conversations, chat settings, attachment bytes, turns (with their idempotency keys) and
attachments are copied table by table in key order, keeping their ids, with an upsert on each
row's key: running the copy again adds what is new, updates what changed (an answer that has
since finished) and duplicates nothing. Afterwards every table is compared row by row, so
the counts printed are the counts verified. Both databases are first brought to the current
schema, as the bot itself would on start. Stop the bot (or copy again after stopping it)
so the target holds everything.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass

import aiosqlite
import asyncpg

from storage import database_engine, open_store, parse_database_url
from storage.errors import StorageError
from storage.postgres.connection import PostgresSession
from storage.sqlite.connection import SQLiteSession, connect
from storage.tables import TABLES, Row, SessionTables, Table, key_of
from storage.url import redact

_ANY_SIZE = 1 << 62
_DATABASE_ERRORS = (aiosqlite.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One table's figures: rows in the source, in the target before and after the copy,
    and whether the target now holds exactly the source's rows."""

    table: str
    source: int
    before: int
    after: int
    identical: bool
    first_difference: str | None = None

    @property
    def ok(self) -> bool:
        return self.identical and self.source == self.after


@dataclass(frozen=True, slots=True)
class CopyReport:
    source: str
    target: str
    tables: tuple[TableCopy, ...]

    @property
    def ok(self) -> bool:
        return all(table.ok for table in self.tables)

    def lines(self) -> list[str]:
        """The table `phi4bot db copy` prints, then one line saying whether it verified."""
        out = [
            f"copied {self.source} -> {self.target}",
            f"{'table':<16}{'source':>10}{'target':>10}{'new':>10}  check",
        ]
        for t in self.tables:
            verdict = "ok" if t.ok else f"MISMATCH: {t.first_difference or 'counts differ'}"
            out.append(
                f"{t.table:<16}{t.source:>10}{t.after:>10}{t.after - t.before:>10}  {verdict}"
            )
        if self.ok:
            out.append("verified: the target holds every row of the source, identical")
        else:
            out.append("NOT verified: the target differs from the source (see above)")
        return out


async def copy_database(source_url: str, target_url: str) -> CopyReport:
    """Copy every table from `source_url` to `target_url` (any two supported URLs), then
    verify; raises `StorageError` when either database cannot be used."""
    source_url, target_url = source_url.strip(), target_url.strip()
    if _same_database(source_url, target_url):
        raise StorageError("The source and the target are the same database.")
    for url in (source_url, target_url):
        store = await open_store(url, max_attachment_bytes=_ANY_SIZE)
        await store.close()
    source = await _tables(source_url)
    try:
        target = await _tables(target_url)
        try:
            before = {table.name: await _copy_table(source, target, table) for table in TABLES}
            await target.finish()
            verified = [
                await _verify(source, target, table, before[table.name]) for table in TABLES
            ]
        finally:
            await target.close()
    except (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
        raise StorageError(
            f"The copy stopped: the target holds other data under the same keys ({_sentence(exc)})."
        ) from exc
    except _DATABASE_ERRORS as exc:
        raise StorageError(f"The copy stopped: {_sentence(exc)}.") from exc
    finally:
        await source.close()
    return CopyReport(redact(source_url), redact(target_url), tuple(verified))


async def _copy_table(source: SessionTables, target: SessionTables, table: Table) -> int:
    """Upsert every row of the source's table into the target's, a page at a time; returns
    how many rows the target held before."""
    before = await target.count(table)
    after: Row | None = None
    while rows := await source.read(table, after):
        await target.write(table, rows)
        after = rows[-1]
    return before


async def _verify(
    source: SessionTables, target: SessionTables, table: Table, before: int
) -> TableCopy:
    """Both sides read in key order, page by page, and compared row by row."""
    difference = await _first_difference(source, target, table)
    return TableCopy(
        table.name,
        await source.count(table),
        before,
        await target.count(table),
        identical=difference is None,
        first_difference=difference,
    )


async def _first_difference(
    source: SessionTables, target: SessionTables, table: Table
) -> str | None:
    after: Row | None = None
    while True:
        mine, theirs = await asyncio.gather(source.read(table, after), target.read(table, after))
        for left, right in zip(mine, theirs, strict=False):
            if key_of(table, left) != key_of(table, right):
                extra = min(key_of(table, left), key_of(table, right))
                return f"row {extra} is on one side only"
            if left != right:
                return f"row {key_of(table, left)} differs"
        if len(mine) != len(theirs):
            return (
                "the target has rows the source lacks"
                if len(theirs) > len(mine)
                else ("the source has rows the target lacks")
            )
        if not mine:
            return None
        after = mine[-1]


async def _tables(url: str) -> SessionTables:
    """The database's tables over a connection of its own (not a pool's: a copy is one
    long sequence of pages)."""
    if database_engine(url) == "sqlite":
        db = await connect(parse_database_url(url))
        return SessionTables(SQLiteSession(db), db.close)
    connection = await asyncpg.connect(url)
    return SessionTables(PostgresSession(connection), connection.close)


def _same_database(a: str, b: str) -> bool:
    if database_engine(a) == database_engine(b) == "sqlite":
        return parse_database_url(a).resolve() == parse_database_url(b).resolve()
    return a == b


def _sentence(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".")
    return text.splitlines()[0] if text else type(exc).__name__
