"""Forgetting what is past keeping: whole conversations nobody touched for long, and the bytes
of old media (their turns keep the attachment's metadata as a placeholder); and the figures
`phi4bot db stats` prints.

Each call does one small batch in one transaction, so a sweep of a large database never holds
the write lock for long: the caller repeats it until a batch comes back short.
"""

from __future__ import annotations

import time

from storage.models import DatabaseStats, Forgotten, TableSize
from storage.session import Session

_STALE = (
    "SELECT c.id FROM conversations c "
    "LEFT JOIN turns t ON t.id = (SELECT max(n.id) FROM turns n WHERE n.conversation_id = c.id) "
    "WHERE c.created_at < ? AND (t.id IS NULL OR (t.created_at < ? "
    "AND (t.finished_at IS NULL OR t.finished_at < ?) "
    "AND (t.status IS NULL OR t.status != 'streaming'))) "
)
"""Conversations whose newest turn (or, without turns, whose start) is older than the cutoff;
an answer still streaming keeps its conversation, however old."""
_STALE_CONVERSATIONS = _STALE + "ORDER BY c.id LIMIT ?"

_STALE_MEDIA = (
    "SELECT b.sha256 FROM blobs b WHERE b.dropped_at IS NULL AND NOT EXISTS "
    "(SELECT 1 FROM attachments a JOIN turns t ON t.id = a.turn_id "
    "WHERE a.sha256 = b.sha256 AND t.created_at >= ?) ORDER BY b.sha256 LIMIT ?"
)
"""Stored bytes that no turn newer than the cutoff shows (one photo sent twice is kept as long
as its newer turn)."""

TABLES = (
    "conversations",
    "turns",
    "attachments",
    "blobs",
    "chat_settings",
    "handled_commands",
    "held_messages",
)


async def forget_conversations(db: Session, before: float, batch: int) -> int:
    """Delete up to `batch` conversations untouched since `before` (epoch seconds), with their
    turns and attachments' metadata; bytes no attachment refers to any more go with them.
    Returns how many conversations were deleted."""
    cutoff = db.dialect.time(before)
    async with db.transaction():
        found = await db.fetch(_STALE_CONVERSATIONS, cutoff, cutoff, cutoff, batch)
        ids = await _still_stale(db, [row[0] for row in found], cutoff)
        if not ids:
            return 0
        in_conversations, values = db.dialect.any_of("conversation_id", ids)
        turns = f"SELECT id FROM turns WHERE {in_conversations}"
        hashes = await db.fetch(
            f"SELECT DISTINCT sha256 FROM attachments WHERE turn_id IN ({turns})", *values
        )
        await db.execute(f"DELETE FROM attachments WHERE turn_id IN ({turns})", *values)
        await db.execute(f"DELETE FROM turns WHERE {in_conversations}", *values)
        in_ids, values = db.dialect.any_of("id", ids)
        await db.execute(f"DELETE FROM conversations WHERE {in_ids}", *values)
        if hashes:
            in_hashes, values = db.dialect.any_of("sha256", [row[0] for row in hashes])
            await db.execute(
                f"DELETE FROM blobs WHERE {in_hashes} AND NOT EXISTS "
                "(SELECT 1 FROM attachments a WHERE a.sha256 = blobs.sha256)",
                *values,
            )
    return len(ids)


async def _still_stale(db: Session, ids: list[int], cutoff: object) -> list[int]:
    """Of the conversations chosen, those still stale once locked. Where other writers go on
    meanwhile (PostgreSQL: SQLite's write lock keeps them out), a turn stored between the
    choice and the lock touched its conversation, which is then kept, not deleted with the
    new turn in it; a turn arriving after the lock waits for the deletion and then starts a
    new conversation (`storage.conversations`)."""
    if not ids:
        return ids
    in_ids, values = db.dialect.any_of("id", ids)
    await db.fetch(
        f"SELECT id FROM conversations WHERE {in_ids} ORDER BY id{db.dialect.for_update}",
        *values,
    )
    in_ids, values = db.dialect.any_of("c.id", ids)
    rows = await db.fetch(f"{_STALE}AND {in_ids} ORDER BY c.id", cutoff, cutoff, cutoff, *values)
    return [row[0] for row in rows]


async def forget_media(db: Session, before: float, batch: int) -> int:
    """Drop the bytes of up to `batch` stored files that no turn since `before` shows; the
    attachments keep their metadata (kind, name, size), so history tells the model a file
    was there. A file sent again later is stored again (see `storage.turns`). Returns how
    many files lost their bytes."""
    cutoff = db.dialect.time(before)
    async with db.transaction():
        found = await db.fetch(_STALE_MEDIA, cutoff, batch)
        if not found:
            return 0
        in_hashes, values = db.dialect.any_of("sha256", [row[0] for row in found])
        # The same rule again in the update, for a turn showing the file stored meanwhile.
        await db.execute(
            f"UPDATE blobs SET data = ?, dropped_at = ? WHERE {in_hashes} "
            "AND dropped_at IS NULL AND NOT EXISTS (SELECT 1 FROM attachments a "
            "JOIN turns t ON t.id = a.turn_id WHERE a.sha256 = blobs.sha256 AND t.created_at >= ?)",
            b"",
            db.dialect.time(time.time()),
            *values,
            cutoff,
        )
    return len(found)


async def forget(
    db: Session, *, conversations_before: float | None, media_before: float | None, batch: int
) -> Forgotten:
    """One batch of each kind of forgetting asked for (None: that kind is off)."""
    conversations = media = 0
    if conversations_before is not None:
        conversations = await forget_conversations(db, conversations_before, batch)
    if media_before is not None:
        media = await forget_media(db, media_before, batch)
    return Forgotten(conversations=conversations, media=media, batch=batch)


async def database_stats(db: Session) -> DatabaseStats:
    """Rows and bytes per table (bytes where the engine can tell), and the conversation
    untouched the longest."""
    sizes = await db.dialect.table_sizes(db, TABLES)
    tables = []
    for name in TABLES:
        rows = int(await db.fetchval(f"SELECT count(*) FROM {name}"))
        tables.append(TableSize(name, rows, sizes.get(name)))
    oldest = await db.fetchrow(
        "SELECT c.id, c.chat_id, coalesce(max(t.created_at), c.created_at) AS touched "
        "FROM conversations c LEFT JOIN turns t ON t.conversation_id = c.id "
        "GROUP BY c.id, c.chat_id, c.created_at ORDER BY touched, c.id LIMIT 1"
    )
    return DatabaseStats(
        engine=db.dialect.name,
        tables=tuple(tables),
        oldest_conversation=None if oldest is None else int(oldest[0]),
        oldest_chat=None if oldest is None else int(oldest[1]),
        oldest_touched=None if oldest is None else db.dialect.moment(oldest[2]),
    )
