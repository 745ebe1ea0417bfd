"""Reading a conversation back for the model on PostgreSQL: the newest whole turns that fit.

The same walk as `storage.history` (pages from the newest turn back, growing, until the
budget is spent; bytes only for the newest few attachments), in PostgreSQL's dialect.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from storage.history import (
    ATTACHMENT_COLUMNS,
    FIRST_PAGE,
    LARGEST_PAGE,
    TURN_COLUMNS,
    VISIBLE,
    newest_hashes,
    stored_attachment,
)
from storage.models import HistoryTurn, StoredAttachment

if TYPE_CHECKING:
    from storage.postgres.connection import Db

_NO_ID_YET = 2**63 - 1

Row = Sequence[Any]


async def load_history(
    db: Db,
    conversation_id: int,
    *,
    char_budget: int,
    media_limit: int,
    until_turn_id: int | None = None,
) -> list[HistoryTurn]:
    """See `storage.history.load_history`: the same rule, the same result."""
    before = _NO_ID_YET if until_turn_id is None else until_turn_id + 1
    rows = await _newest_turns_within(db, conversation_id, char_budget, before)
    if not rows:
        return []
    rows.reverse()
    attachments = await _attachments_after(db, conversation_id, rows[0][0])
    wanted = newest_hashes(rows, attachments, media_limit)
    data = await _blob_data(db, wanted)
    return [
        _history_turn(
            row, [stored_attachment(a, data.get(a[4])) for a in attachments.get(row[0], ())]
        )
        for row in rows
    ]


async def load_last_user_turn(db: Db, conversation_id: int) -> HistoryTurn | None:
    """The newest user turn with all its attachments' bytes, for /retry."""
    row = await db.fetchrow(
        f"SELECT {TURN_COLUMNS} FROM turns WHERE conversation_id = $1 AND role = 'user' "
        "ORDER BY id DESC LIMIT 1",
        conversation_id,
    )
    if row is None:
        return None
    attachments = await db.fetch(
        f"SELECT {ATTACHMENT_COLUMNS}, b.data FROM attachments a "
        "JOIN blobs b ON b.sha256 = a.sha256 WHERE a.turn_id = $1 ORDER BY a.position",
        row[0],
    )
    return _history_turn(tuple(row), [stored_attachment(tuple(a), a[6]) for a in attachments])


async def _newest_turns_within(
    db: Db, conversation_id: int, char_budget: int, before: int
) -> list[Row]:
    picked: list[Row] = []
    used = 0
    page = FIRST_PAGE
    while True:
        rows = await db.fetch(
            f"SELECT {TURN_COLUMNS} FROM turns WHERE conversation_id = $1 AND id < $2 "
            f"AND {VISIBLE} ORDER BY id DESC LIMIT $3",
            conversation_id,
            before,
            page,
        )
        for row in rows:
            cost = len(row[2])
            if picked and used + cost > char_budget:
                return picked
            picked.append(tuple(row))
            used += cost
        if len(rows) < page:
            return picked
        before = rows[-1][0]
        page = min(page * 4, LARGEST_PAGE)


async def _attachments_after(
    db: Db, conversation_id: int, first_turn_id: int
) -> dict[int, list[Row]]:
    rows = await db.fetch(
        f"SELECT a.turn_id, {ATTACHMENT_COLUMNS} FROM turns t "
        "JOIN attachments a ON a.turn_id = t.id "
        "WHERE t.conversation_id = $1 AND t.id >= $2 ORDER BY t.id, a.position",
        conversation_id,
        first_turn_id,
    )
    found: dict[int, list[Row]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(tuple(row)[1:])
    return found


async def _blob_data(db: Db, hashes: Sequence[str]) -> dict[str, bytes]:
    if not hashes:
        return {}
    rows = await db.fetch(
        "SELECT sha256, data FROM blobs WHERE sha256 = ANY($1::text[])", sorted(set(hashes))
    )
    return {row[0]: row[1] for row in rows}


def _history_turn(row: Row, attachments: Iterable[StoredAttachment]) -> HistoryTurn:
    return HistoryTurn(
        turn_id=row[0],
        role=cast(Literal["user", "assistant"], row[1]),
        text=row[2],
        sender_name=row[3],
        attachments=tuple(attachments),
        created_at=row[4],
    )
