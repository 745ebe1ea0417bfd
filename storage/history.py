"""Reading a conversation back for the model: the newest whole turns that fit a budget.

A conversation may hold tens of thousands of turns while the model sees a few dozen, so the
reader walks back from the newest turn a page at a time and stops as soon as the budget is
spent; attachment bytes are fetched only for the newest few attachments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, cast

from storage.models import HistoryTurn, StoredAttachment
from storage.session import Session

VISIBLE = "(role = 'user' OR status IN ('complete', 'stopped'))"
"""Turns the model sees: every user turn, and answers that ended with text worth keeping.
Failed, interrupted, replaced and still-streaming answers are left out."""

FIRST_PAGE = 32
LARGEST_PAGE = 1024
_NO_ID_YET = 2**63 - 1

TURN_COLUMNS = "id, role, text, sender_name, created_at"
ATTACHMENT_COLUMNS = "a.kind, a.mime_type, a.size, a.filename, a.sha256, a.telegram_file_id"

Row = Sequence[Any]


async def load_history(
    db: Session,
    conversation_id: int,
    *,
    char_budget: int,
    media_limit: int,
    until_turn_id: int | None = None,
) -> list[HistoryTurn]:
    """Oldest first, ending with `until_turn_id` when given: turns stored after it (such as
    messages waiting behind the answer being written) are not part of its context.
    Whole turns are dropped from the oldest until the text fits `char_budget`; the newest
    visible turn is always kept, even alone over budget, because a model asked about nothing
    cannot answer. Only the newest `media_limit` attachments carry their bytes; older ones
    keep their metadata, so the model can be told they existed."""
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
            db, row, [stored_attachment(a, data.get(a[4])) for a in attachments.get(row[0], ())]
        )
        for row in rows
    ]


async def load_last_user_turn(db: Session, conversation_id: int) -> HistoryTurn | None:
    """The newest user turn with all its attachments' bytes, for /retry."""
    row = await db.fetchrow(
        f"SELECT {TURN_COLUMNS} FROM turns WHERE conversation_id = ? AND role = 'user' "
        "ORDER BY id DESC LIMIT 1",
        conversation_id,
    )
    if row is None:
        return None
    attachments = await db.fetch(
        f"SELECT {ATTACHMENT_COLUMNS}, CASE WHEN b.dropped_at IS NULL THEN b.data END "
        "FROM attachments a "
        "JOIN blobs b ON b.sha256 = a.sha256 WHERE a.turn_id = ? ORDER BY a.position",
        row[0],
    )
    return _history_turn(db, row, [stored_attachment(a, a[6]) for a in attachments])


async def _newest_turns_within(
    db: Session, conversation_id: int, char_budget: int, before: int
) -> list[Row]:
    """Visible turns newest first, as many whole ones as fit; pages grow so a long walk
    costs a few queries, while the usual short one reads little more than it keeps."""
    picked: list[Row] = []
    used = 0
    page = FIRST_PAGE
    while True:
        rows = await db.fetch(
            f"SELECT {TURN_COLUMNS} FROM turns WHERE conversation_id = ? AND id < ? "
            f"AND {VISIBLE} ORDER BY id DESC LIMIT ?",
            conversation_id,
            before,
            page,
        )
        for row in rows:
            cost = len(row[2])
            if picked and used + cost > char_budget:
                return picked
            picked.append(row)
            used += cost
        if len(rows) < page:
            return picked
        before = rows[-1][0]
        page = min(page * 4, LARGEST_PAGE)


async def _attachments_after(
    db: Session, conversation_id: int, first_turn_id: int
) -> dict[int, list[Row]]:
    """Attachment metadata of the conversation's turns from `first_turn_id` on, by turn."""
    rows = await db.fetch(
        f"SELECT a.turn_id, {ATTACHMENT_COLUMNS} FROM turns t "
        "JOIN attachments a ON a.turn_id = t.id "
        "WHERE t.conversation_id = ? AND t.id >= ? ORDER BY t.id, a.position",
        conversation_id,
        first_turn_id,
    )
    found: dict[int, list[Row]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row[1:])
    return found


def newest_hashes(
    rows: Sequence[Row], attachments: dict[int, list[Row]], media_limit: int
) -> list[str]:
    """Content hashes of the newest `media_limit` attachments among the kept turns.

    The newest turn (the question being answered) keeps every attachment even past the
    limit, so a video's frames or a PDF's pages all reach the model once; older turns
    share what the limit leaves. A limit of 0 carries no media at all.
    """
    if media_limit <= 0 or not rows:
        return []
    hashes = [attachment[4] for attachment in attachments.get(rows[-1][0], ())]
    for row in reversed(rows[:-1]):
        for attachment in attachments.get(row[0], ()):
            if len(hashes) >= media_limit:
                return hashes
            hashes.append(attachment[4])
    return hashes


async def _blob_data(db: Session, hashes: Sequence[str]) -> dict[str, bytes]:
    if not hashes:
        return {}
    condition, values = db.dialect.any_of("sha256", sorted(set(hashes)))
    rows = await db.fetch(
        f"SELECT sha256, data FROM blobs WHERE {condition} AND dropped_at IS NULL", *values
    )
    return {row[0]: row[1] for row in rows}


def stored_attachment(row: Row, data: bytes | None) -> StoredAttachment:
    return StoredAttachment(
        kind=cast(Literal["image", "audio"], row[0]),
        mime_type=row[1],
        size=row[2],
        filename=row[3],
        sha256=row[4],
        data=data,
        telegram_file_id=row[5],
    )


def _history_turn(db: Session, row: Row, attachments: Iterable[StoredAttachment]) -> HistoryTurn:
    return HistoryTurn(
        turn_id=row[0],
        role=cast(Literal["user", "assistant"], row[1]),
        text=row[2],
        sender_name=row[3],
        attachments=tuple(attachments),
        created_at=db.dialect.moment(row[4]),
    )
