"""Messages held back to become one turn with what follows them, kept until that turn is
stored.

Telegram counts an update delivered once the bot has fetched it, but an album's parts and
media sent without a caption wait a few seconds in memory for the rest of their turn. Kept
here meanwhile, they survive a crash: the next start hands them over as the turn they were
waiting to become.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from storage.models import HeldMessage
from storage.session import Session


async def hold_message(db: Session, chat_id: int, message_id: int, payload: str) -> None:
    """Keep a message (Telegram's JSON of it) until `release_held`; one kept before stays."""
    await db.execute(
        "INSERT INTO held_messages (chat_id, message_id, payload, held_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        chat_id,
        message_id,
        payload,
        db.dialect.time(time.time()),
    )


async def release_held(db: Session, chat_id: int, message_ids: Sequence[int]) -> None:
    """Forget messages whose turn is stored (or refused): nothing is left to hand over."""
    async with db.transaction():
        for message_id in message_ids:
            await db.execute(
                "DELETE FROM held_messages WHERE chat_id = ? AND message_id = ?",
                chat_id,
                message_id,
            )


async def held_messages(db: Session, held_before: float) -> list[HeldMessage]:
    """The messages held since before `held_before` (epoch seconds), oldest first: those a
    process that is gone was holding."""
    rows = await db.fetch(
        "SELECT chat_id, message_id, payload FROM held_messages WHERE held_at < ? "
        "ORDER BY held_at, chat_id, message_id",
        db.dialect.time(held_before),
    )
    return [HeldMessage(int(row[0]), int(row[1]), str(row[2])) for row in rows]
