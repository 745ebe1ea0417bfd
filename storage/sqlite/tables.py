"""A SQLite file seen as the plain tables of `storage.tables`, for `phi4bot db copy`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from storage.sqlite.connection import connect, transaction
from storage.tables import Row, Table, from_sqlite, key_of, page_sql, to_sqlite, upsert_sql


class SQLiteTables:
    """Reads and upserts rows of one SQLite file over a connection of its own."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def connect(cls, path: Path) -> SQLiteTables:
        return cls(await connect(path))

    async def count(self, table: Table) -> int:
        rows = list(await self._db.execute_fetchall(f"SELECT count(*) FROM {table.name}"))
        return int(rows[0][0])

    async def read(self, table: Table, after: Row | None) -> list[Row]:
        marks = None if after is None else ["?"] * len(table.key)
        values = [] if after is None else list(key_of(table, after))
        rows = await self._db.execute_fetchall(page_sql(table, marks, "?"), [*values, table.page])
        return [from_sqlite(table, row) for row in rows]

    async def write(self, table: Table, rows: Sequence[Row]) -> None:
        sql = upsert_sql(table, ["?"] * len(table.columns), "IS NOT")
        async with transaction(self._db):
            await self._db.executemany(sql, [to_sqlite(table, row) for row in rows])

    async def finish(self) -> None:
        """SQLite gives a new row the largest id plus one by itself."""

    async def close(self) -> None:
        await self._db.close()
