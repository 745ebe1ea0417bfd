"""Every table of the store as plain rows, the same on both engines, for copying and checking.

A row is a tuple in the column order below, with engine-neutral values: times are aware UTC
`datetime`s (SQLite keeps epoch seconds, PostgreSQL `timestamptz`), a reply's message ids are
a tuple of ints (SQLite keeps JSON text, PostgreSQL an array). Rows are read in key order a
page at a time, and written with an upsert on the key, so writing a row twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from storage.session import Session

Kind = Literal["plain", "time", "ids"]
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """A table's name, its key columns and every column with how its values are kept."""

    name: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, Kind], ...]
    identity: bool = False  # ids come from a sequence that must follow the copied ones
    immutable: bool = False  # a row is fixed by its key (content-addressed): never rewritten
    page: int = 500

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]


TABLES = (
    Table(
        "conversations",
        ("id",),
        (("id", "plain"), ("chat_id", "plain"), ("thread_id", "plain"), ("created_at", "time")),
        identity=True,
    ),
    Table(
        "chat_settings",
        ("chat_id", "name"),
        (("chat_id", "plain"), ("name", "plain"), ("value", "plain")),
    ),
    Table(
        "blobs",
        ("sha256",),
        (("sha256", "plain"), ("size", "plain"), ("data", "plain"), ("dropped_at", "time")),
        page=16,
    ),
    Table(
        "turns",
        ("id",),
        (
            ("id", "plain"),
            ("conversation_id", "plain"),
            ("role", "plain"),
            ("text", "plain"),
            ("chat_id", "plain"),
            ("message_id", "plain"),
            ("sender_id", "plain"),
            ("sender_name", "plain"),
            ("reply_to", "plain"),
            ("reply_message_ids", "ids"),
            ("status", "plain"),
            ("error", "plain"),
            ("created_at", "time"),
            ("finished_at", "time"),
            ("reported_at", "time"),
            ("owner", "plain"),
        ),
        identity=True,
    ),
    Table(
        "attachments",
        ("id",),
        (
            ("id", "plain"),
            ("turn_id", "plain"),
            ("position", "plain"),
            ("kind", "plain"),
            ("mime_type", "plain"),
            ("size", "plain"),
            ("filename", "plain"),
            ("telegram_file_id", "plain"),
            ("sha256", "plain"),
        ),
        identity=True,
    ),
    Table(
        "handled_commands",
        ("chat_id", "message_id"),
        (("chat_id", "plain"), ("message_id", "plain"), ("handled_at", "time")),
    ),
    Table(
        "held_messages",
        ("chat_id", "message_id"),
        (
            ("chat_id", "plain"),
            ("message_id", "plain"),
            ("payload", "plain"),
            ("held_at", "time"),
        ),
    ),
)
"""In the order they are written: every row refers only to rows of tables before it (or, for
a turn's `reply_to`, to an earlier turn)."""


class SessionTables:
    """One database seen as the tables above, over a session of its own: rows are read a
    page at a time in key order and written with an upsert in one transaction, converted
    to and from the engine's values by its dialect."""

    def __init__(self, session: Session, close: Callable[[], Awaitable[None]]) -> None:
        self._db = session
        self._close = close

    async def count(self, table: Table) -> int:
        return int(await self._db.fetchval(f"SELECT count(*) FROM {table.name}"))

    async def read(self, table: Table, after: Row | None) -> list[Row]:
        """The next page of rows in key order, after the row whose key is `after`."""
        marks = None if after is None else ["?"] * len(table.key)
        values = [] if after is None else list(key_of(table, after))
        rows = await self._db.fetch(page_sql(table, marks, "?"), *values, table.page)
        return [_converted(table, row, self._read) for row in rows]

    async def write(self, table: Table, rows: Sequence[Row]) -> None:
        """Insert the rows, or overwrite the rows with their keys, in one transaction."""
        sql = upsert_sql(table, ["?"] * len(table.columns), self._db.dialect.distinct)
        async with self._db.transaction():
            await self._db.executemany(sql, [_converted(table, row, self._write) for row in rows])

    async def finish(self) -> None:
        """After writing: let new ids continue after the copied ones (see
        `Dialect.after_copy`)."""
        identity = [table.name for table in TABLES if table.identity]
        for statement in self._db.dialect.after_copy(identity, [t.name for t in TABLES]):
            await self._db.execute(statement)

    async def close(self) -> None:
        await self._close()

    def _read(self, kind: Kind, value: Any) -> Any:
        if value is None or kind == "plain":
            return value
        dialect = self._db.dialect
        return dialect.moment(value) if kind == "time" else dialect.read_ids(value)

    def _write(self, kind: Kind, value: Any) -> Any:
        if value is None or kind == "plain":
            return value
        dialect = self._db.dialect
        return dialect.time(value.timestamp()) if kind == "time" else dialect.ids(value)


def _converted(table: Table, row: Sequence[Any], convert: Callable[[Kind, Any], Any]) -> Row:
    return tuple(convert(kind, value) for (_, kind), value in zip(table.columns, row, strict=True))


def upsert_sql(table: Table, marks: Sequence[str], differs: str) -> str:
    """`INSERT … ON CONFLICT (key) DO UPDATE` of the columns that changed, with the engine's
    parameter marks and its null-safe "differs" operator (`IS NOT`, `IS DISTINCT FROM`), so a
    row written again unchanged is not rewritten."""
    names = table.names
    insert = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(marks)}) "
    target = f"ON CONFLICT ({', '.join(table.key)}) "
    others = [name for name in names if name not in table.key]
    if table.immutable or not others:
        return insert + target + "DO NOTHING"
    updates = ", ".join(f"{name} = excluded.{name}" for name in others)
    changed = " OR ".join(f"{table.name}.{name} {differs} excluded.{name}" for name in others)
    return insert + target + f"DO UPDATE SET {updates} WHERE {changed}"


def page_sql(table: Table, after_marks: Sequence[str] | None, limit_mark: str) -> str:
    """The next page in key order; `after_marks` None for the first page."""
    key = ", ".join(table.key)
    where = "" if after_marks is None else f" WHERE ({key}) > ({', '.join(after_marks)})"
    return (
        f"SELECT {', '.join(table.names)} FROM {table.name}{where} "
        f"ORDER BY {key} LIMIT {limit_mark}"
    )


def key_of(table: Table, row: Row) -> Row:
    return tuple(row[table.names.index(name)] for name in table.key)
