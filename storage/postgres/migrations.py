"""The PostgreSQL schema as ordered migrations, applied at start-up and recorded once applied.

The same scheme as `storage.sqlite.migrations`: each migration is a plain async function
registered by `@migration` in the order it appears here, and the table `schema_migrations`
records each one's version, name and time; the highest recorded version is the schema's.
Version N means the same tables on both engines, so the steps carry the same names.
Each step runs in its own transaction (PostgreSQL's DDL is transactional) under an advisory
lock, so processes starting together apply it once. A released step is never edited nor
moved; a change is a new step at the end, here and in SQLite's list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage import schema
from storage.postgres.locks import LockNamespace
from storage.schema import Migration, SchemaTooNew

if TYPE_CHECKING:
    from storage.postgres.connection import Db

MIGRATIONS: list[Migration[Db]] = []
migration = schema.registrar(lambda: MIGRATIONS)


async def schema_version(db: Db) -> int:
    """The highest version recorded in `schema_migrations` (0 when there is no such table)."""
    if await db.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return 0
    return int(await db.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def apply_migrations(db: Db, *, upto: int | None = None) -> list[str]:
    """Apply the missing migrations up to version `upto` (default: all), each in its own
    transaction together with its record. The version is read again once the lock is held,
    so two processes opening the database at once do not apply a step twice. Returns the
    names of the steps applied here."""
    target = len(MIGRATIONS) if upto is None else upto
    found = await schema_version(db)
    if found > len(MIGRATIONS):
        raise SchemaTooNew(found, len(MIGRATIONS))
    applied: list[str] = []
    if found >= target:
        return applied
    # A session-level lock taken outside the steps' transactions: a transaction that began
    # before the lock was granted could keep stale catalog lookups ("no schema_migrations
    # table yet") and apply a step another process has just committed.
    await db.execute("SELECT pg_advisory_lock($1, 0)", int(LockNamespace.MIGRATIONS))
    try:
        while found < target:
            step_name = await _apply_next(db, target)
            if step_name is None:
                break
            applied.append(step_name)
            found = await schema_version(db)
    finally:
        await db.execute("SELECT pg_advisory_unlock($1, 0)", int(LockNamespace.MIGRATIONS))
    return applied


async def _apply_next(db: Db, target: int) -> str | None:
    """Apply the next missing step with its record in one transaction; None when the
    schema already reached `target` (another process applied it meanwhile)."""
    async with db.transaction():
        found = await schema_version(db)
        if found >= target:
            return None
        step = MIGRATIONS[found]
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
            " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await step.step(db)
        await db.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            step.version,
            step.name,
        )
    return step.name


async def _run(db: Db, *statements: str) -> None:
    for statement in statements:
        await db.execute(statement)


@migration
async def create_conversations_and_turns(db: Db) -> None:
    """Conversations per (chat, topic), chat settings as name/value rows, and turns; the
    same shape as SQLite's, with PostgreSQL's types: identity ids, timestamps with time
    zone, and the reply's message ids as an array."""
    await _run(
        db,
        schema.CONVERSATIONS.sql(schema.POSTGRES),
        schema.CHAT_SETTINGS.sql(schema.POSTGRES),
        schema.TURNS.sql(schema.POSTGRES),
        *schema.FIRST_INDEXES,
        "CREATE INDEX turns_by_reply ON turns (reply_to) WHERE reply_to IS NOT NULL",
    )


@migration
async def create_attachments(db: Db) -> None:
    """Attachment metadata per turn, and their bytes once per SHA-256 in a table of their
    own. Photos and audio are compressed already: their bytes are stored as they are."""
    await _run(
        db,
        schema.BLOBS.sql(schema.POSTGRES),
        "ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL",
        schema.ATTACHMENTS.sql(schema.POSTGRES),
        "CREATE INDEX attachments_by_turn ON attachments (turn_id, position)",
    )


@migration
async def add_turn_reported_at(db: Db) -> None:
    """When start-up reported a user turn left without an answer, so it is reported once."""
    await db.execute("ALTER TABLE turns ADD COLUMN reported_at timestamptz")


@migration
async def create_handled_commands(db: Db) -> None:
    """Commands carried out, by their message, so a command Telegram delivers again after a
    crash (/new above all) is carried out once, whichever process receives it."""
    await _run(
        db,
        schema.HANDLED_COMMANDS.sql(schema.POSTGRES),
        "CREATE INDEX handled_commands_by_time ON handled_commands (handled_at)",
    )


@migration
async def add_answer_owner(db: Db) -> None:
    """Which process writes an answer, and user turns by time; see
    `storage.sqlite.migrations.add_answer_owner`."""
    await _run(db, "ALTER TABLE turns ADD COLUMN owner text", schema.WAITING_INDEX)


@migration
async def prepare_retention(db: Db) -> None:
    """When a file's bytes were dropped by retention, and the indexes deleting old
    conversations needs; see `storage.sqlite.migrations.prepare_retention`."""
    await _run(db, schema.RETENTION_INDEX, "ALTER TABLE blobs ADD COLUMN dropped_at timestamptz")


@migration
async def create_held_messages(db: Db) -> None:
    """Messages held back to become one turn with what follows them; see
    `storage.sqlite.migrations.create_held_messages`."""
    await _run(db, schema.HELD_MESSAGES.sql(schema.POSTGRES))
