"""The database schema as ordered migrations, applied at start-up and recorded once applied.

Each migration is a plain async function registered by `@migration` in the order it appears
in this file. `PRAGMA user_version` holds how many have been applied, and the table
`schema_migrations` records each one's name and time, so any database, however old, is
brought up to date by running the ones it lacks. Never edit or reorder a released
migration: add a new one at the end.
"""

from __future__ import annotations

import time

import aiosqlite

from storage import schema
from storage.schema import Migration, SchemaTooNew
from storage.sqlite.connection import transaction

MIGRATIONS: list[Migration[aiosqlite.Connection]] = []
migration = schema.registrar(lambda: MIGRATIONS)


async def schema_version(db: aiosqlite.Connection) -> int:
    """How many migrations the database has had (`PRAGMA user_version`)."""
    rows = list(await db.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


async def apply_migrations(db: aiosqlite.Connection, *, upto: int | None = None) -> list[str]:
    """Apply the missing migrations up to version `upto` (default: all), each in its own
    transaction together with its record, so a crash never leaves a half-applied step.

    The version is read again inside each write transaction, so two processes opening the same
    file at once do not apply a step twice. Returns the names of the steps applied here.
    """
    target = len(MIGRATIONS) if upto is None else upto
    found = await schema_version(db)
    if found > len(MIGRATIONS):
        raise SchemaTooNew(found, len(MIGRATIONS))
    applied: list[str] = []
    while found < target:
        async with transaction(db):
            found = await schema_version(db)
            if found >= target:
                break
            step = MIGRATIONS[found]
            await _record_table(db)
            await step.step(db)
            await db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (step.version, step.name, time.time()),
            )
            await db.execute(f"PRAGMA user_version = {step.version:d}")
        applied.append(step.name)
        found = step.version
    return applied


async def _record_table(db: aiosqlite.Connection) -> None:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )


async def _run(db: aiosqlite.Connection, *statements: str) -> None:
    """Statements one by one: `executescript` would commit the migration's transaction."""
    for statement in statements:
        await db.execute(statement)


@migration
async def create_conversations_and_turns(db: aiosqlite.Connection) -> None:
    """Conversations per (chat, topic), chat settings as name/value rows (new settings need
    no schema change), and turns. A key's current conversation is its newest one, so /new
    only inserts. Statuses are checked in Python, so adding one needs no table rebuild."""
    await _run(
        db,
        schema.CONVERSATIONS.sql(schema.SQLITE),
        schema.CHAT_SETTINGS.sql(schema.SQLITE),
        schema.TURNS.sql(schema.SQLITE),
        *schema.FIRST_INDEXES,
    )


@migration
async def create_attachments(db: aiosqlite.Connection) -> None:
    """Attachment metadata per turn, and their bytes once per SHA-256 in a table of their own
    so reading metadata never touches the large pages."""
    await _run(
        db,
        schema.BLOBS.sql(schema.SQLITE),
        schema.ATTACHMENTS.sql(schema.SQLITE),
        "CREATE INDEX attachments_by_turn ON attachments (turn_id, position)",
    )


@migration
async def add_turn_reported_at(db: aiosqlite.Connection) -> None:
    """When start-up reported a user turn left without an answer, so it is reported once."""
    await db.execute("ALTER TABLE turns ADD COLUMN reported_at REAL")


@migration
async def create_handled_commands(db: aiosqlite.Connection) -> None:
    """Commands carried out, by their message, so a command Telegram delivers again after a
    crash (/new above all) is carried out once."""
    await _run(
        db,
        schema.HANDLED_COMMANDS.sql(schema.SQLITE),
        "CREATE INDEX handled_commands_by_time ON handled_commands (handled_at)",
    )


@migration
async def add_answer_owner(db: aiosqlite.Connection) -> None:
    """Which process writes an answer (its instance id), so one process sharing the database
    with others interrupts only the answers of processes that are gone; and user turns by
    time, for finding the turns still waiting for an answer."""
    await _run(db, "ALTER TABLE turns ADD COLUMN owner TEXT", schema.WAITING_INDEX)


@migration
async def prepare_retention(db: aiosqlite.Connection) -> None:
    """When a file's bytes were dropped by retention (its attachments stay, as placeholders);
    and the indexes deleting old conversations needs: attachments by file, and answers by the
    turn they reply to (each deleted turn is looked up there; PostgreSQL has it from the
    start)."""
    await _run(
        db,
        schema.RETENTION_INDEX,
        "CREATE INDEX turns_by_reply ON turns (reply_to) WHERE reply_to IS NOT NULL",
        "ALTER TABLE blobs ADD COLUMN dropped_at REAL",
    )


@migration
async def create_held_messages(db: aiosqlite.Connection) -> None:
    """Messages held back for a few seconds to become one turn with what follows them (an
    album's parts, media waiting for its question): Telegram counts them delivered, so
    they are kept here until their turn is stored, and a crash meanwhile loses none."""
    await _run(db, schema.HELD_MESSAGES.sql(schema.SQLITE))
