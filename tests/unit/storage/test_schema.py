"""The tables described once in `storage.schema`, as each engine's dialect writes them."""

from __future__ import annotations

from typing import get_args

import pytest

from storage import schema
from storage.schema import Column, ColumnType, CreateTable, Spelling

ENGINES = pytest.mark.parametrize(
    "spelling", [schema.SQLITE, schema.POSTGRES], ids=["sqlite", "postgresql"]
)


@ENGINES
def test_every_column_type_has_a_name_on_each_engine(spelling: Spelling) -> None:
    assert set(spelling.types) == set(get_args(ColumnType))


def test_a_table_keyed_by_its_columns_has_no_rowid_on_sqlite_only() -> None:
    assert schema.CHAT_SETTINGS.sql(schema.SQLITE).endswith(") WITHOUT ROWID")
    assert schema.CHAT_SETTINGS.sql(schema.POSTGRES).endswith(")")
    assert "WITHOUT ROWID" not in schema.TURNS.sql(schema.SQLITE)


def test_columns_are_written_in_order_with_the_engines_types() -> None:
    table = CreateTable(
        "pairs",
        (Column("a", "bigint", "NOT NULL"), Column("b", "time")),
        key=("a", "b"),
    )
    assert table.sql(schema.SQLITE) == (
        "CREATE TABLE pairs (\n"
        "            a INTEGER NOT NULL,\n"
        "            b REAL,\n"
        "            PRIMARY KEY (a, b)\n"
        "        ) WITHOUT ROWID"
    )
    assert table.sql(schema.POSTGRES) == (
        "CREATE TABLE pairs (\n"
        "            a bigint NOT NULL,\n"
        "            b timestamptz,\n"
        "            PRIMARY KEY (a, b)\n"
        "        )"
    )
