"""A PostgreSQL database seen as the plain tables of `storage.tables`, for `phi4bot db copy`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncpg

from storage.tables import (
    TABLES,
    Row,
    Table,
    from_postgres,
    key_of,
    page_sql,
    to_postgres,
    upsert_sql,
)

if TYPE_CHECKING:
    from storage.postgres.connection import Db


class PostgresTables:
    """Reads and upserts rows of one PostgreSQL database over a connection of its own."""

    def __init__(self, db: Db) -> None:
        self._db = db

    @classmethod
    async def connect(cls, url: str) -> PostgresTables:
        return cls(await asyncpg.connect(url))

    async def count(self, table: Table) -> int:
        return int(await self._db.fetchval(f"SELECT count(*) FROM {table.name}"))

    async def read(self, table: Table, after: Row | None) -> list[Row]:
        n = len(table.key)
        marks = None if after is None else [f"${i}" for i in range(1, n + 1)]
        values = [] if after is None else list(key_of(table, after))
        limit = f"${len(values) + 1}"
        rows = await self._db.fetch(page_sql(table, marks, limit), *values, table.page)
        return [from_postgres(table, tuple(row)) for row in rows]

    async def write(self, table: Table, rows: Sequence[Row]) -> None:
        marks = [f"${i}" for i in range(1, len(table.columns) + 1)]
        sql = upsert_sql(table, marks, "IS DISTINCT FROM")
        async with self._db.transaction():
            await self._db.executemany(sql, [to_postgres(table, row) for row in rows])

    async def finish(self) -> None:
        """Identity sequences continue after the largest copied id, so the next turn the
        bot stores does not collide with a copied one; and the planner learns how large the
        tables now are (until then it plans for empty ones, and reading a long history
        would sort the whole conversation)."""
        for table in TABLES:
            if table.identity:
                await self._db.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
                )
        await self._db.execute(f"ANALYZE {', '.join(table.name for table in TABLES)}")

    async def close(self) -> None:
        await self._db.close()
