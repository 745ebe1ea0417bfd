"""How many of one person's messages wait for an answer in a conversation, read from the
database, so that the cap on them holds whichever process stored each one.

Where one process is alone, its lanes in memory know every waiting message. Where several
share a database, each stores what it receives and any of them answers it, so only the
database knows how many of a person's messages wait; `count_waiting` asks it. It counts
the way a lane does: the message being answered, or about to be (the key's oldest
unanswered one while no answer is being written), is not waiting any more.
"""

from __future__ import annotations

import time

from storage.models import ConversationKey
from storage.recovery import RECENT_SECONDS
from storage.session import Session


def _waiting_counts(topic: str) -> str:
    """The sender's unanswered recent turns in the key's conversations; the sender of the
    key's oldest unanswered recent turn; and whether an answer is being written there."""
    unanswered = (
        "FROM turns t JOIN conversations c ON c.id = t.conversation_id "
        f"WHERE c.chat_id = ? AND {topic} AND t.role = 'user' AND t.created_at > ? "
        "AND NOT EXISTS (SELECT 1 FROM turns a WHERE a.reply_to = t.id)"
    )
    return (
        f"SELECT (SELECT count(*) {unanswered} AND t.sender_id = ?), "
        f"(SELECT t.sender_id {unanswered} ORDER BY t.id LIMIT 1), "
        "(SELECT count(*) FROM turns s JOIN conversations c ON c.id = s.conversation_id "
        f"WHERE c.chat_id = ? AND {topic} AND s.status = 'streaming')"
    )


# A NULL topic is matched with IS NULL, which unlike `IS NOT DISTINCT FROM` can use the index.
_COUNTS = _waiting_counts("c.thread_id IS NULL")
_COUNTS_TOPIC = _waiting_counts("c.thread_id = ?")


async def count_waiting(db: Session, key: ConversationKey, sender_id: int) -> int:
    """How many of `sender_id`'s turns in the key's conversations wait behind the one being
    answered. Only turns recent enough for an answer to be still on its way count (those
    start-up recovery and the sweeps answer), so a turn left unanswered long ago never
    holds its sender back."""
    since = db.dialect.time(time.time() - RECENT_SECONDS)
    topic = () if key.thread_id is None else (key.thread_id,)
    where = (key.chat_id, *topic, since)
    row = await db.fetchrow(
        _COUNTS if key.thread_id is None else _COUNTS_TOPIC,
        *where,
        sender_id,
        *where,
        key.chat_id,
        *topic,
    )
    if row is None:  # never: a SELECT without FROM gives its one row
        return 0
    mine, first_sender, being_written = int(row[0]), row[1], int(row[2])
    if not being_written and mine and first_sender == sender_id:
        return mine - 1  # the oldest is the one to be answered next: it is in hand
    return mine
