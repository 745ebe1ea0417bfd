"""Short bot messages sent at once, outside any lane: refusals and the restart notices.

Both the dispatcher (refusals) and start-up recovery and the shared sweep (answers a restart
cut off) send them, so they live below all three: `Notices` is built first and handed to
each, and no module of the core needs another to tell a chat something.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.conversation.turns import ReplyTarget
from bot.shared import Sentence
from bot.shared.tasks import TaskSupervisor
from storage import ConversationKey, PendingAnswer

RESTART_NOTICE = Sentence(
    "⚠️ I was restarted before I finished this answer. Send /retry for a full answer "
    "(or, if you have written since, send that question again)."
)


class Notices:
    """Sends a short reply in the background, so the caller (often an update handler or a
    sweep) never waits for Telegram's pacing; shutdown waits for it with the rest."""

    def __init__(
        self, say: Callable[[ReplyTarget, str], Awaitable[object]], tasks: TaskSupervisor
    ) -> None:
        self._say = say
        self._tasks = tasks

    def tell(self, target: ReplyTarget, text: str) -> None:
        """Send `text` to `target` at once, outside the conversation's lane."""
        self._tasks.spawn(self._send(target, text), name=f"notice-{target.key.chat_id}")

    async def _send(self, target: ReplyTarget, text: str) -> None:
        await self._say(target, text)


def by_conversation(found: list[PendingAnswer]) -> dict[ConversationKey, list[PendingAnswer]]:
    """The cut-off answers grouped per conversation, oldest first: one notice each."""
    grouped: dict[ConversationKey, list[PendingAnswer]] = {}
    for pending in sorted(found, key=lambda p: p.user_turn_id):
        grouped.setdefault(pending.key, []).append(pending)
    return grouped


def restart_notice(pending: list[PendingAnswer]) -> str:
    """One message per conversation, however many of its turns the restart left open."""
    if len(pending) == 1:
        return RESTART_NOTICE
    return Sentence(
        "⚠️ I was restarted before I finished some answers here ({count}). "
        "Send /retry for the last one, and send the other questions again.",
        count=len(pending),
    )


def notice_target(pending: list[PendingAnswer]) -> int | None:
    """Reply to the newest cut-off answer's message, or else to the question it answered."""
    latest = pending[-1]
    if latest.reply_message_ids:
        return latest.reply_message_ids[-1]
    return latest.user_message_id
