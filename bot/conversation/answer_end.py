"""An answer's end: first shown in the chat, then stored, in the order `answer_order` keeps.

Storing goes on through a passing outage of the store. The chat has the answer whatever
happens there, so a failure is logged, never raised; an answer whose start could not be
stored is stored whole.
"""

from __future__ import annotations

import logging

from bot.conversation.errors import StoreStillUnavailable
from bot.conversation.generation import Outcome
from bot.conversation.health import BackendHealth
from bot.conversation.lanes import StopReason
from bot.conversation.ports import AnswerView, ChatReplies
from bot.conversation.store_retry import StoreRetry
from bot.conversation.turns import ReplyTarget
from bot.shared import Sentence
from storage import AnswerStatus, ConversationKey, Store

log = logging.getLogger(__name__)

STOP_NOTES = {
    StopReason.USER: Sentence("⏹ Stopped."),
    StopReason.SHUTDOWN: Sentence(
        "⏹ Stopped: the bot is restarting. Send /retry for a full answer."
    ),
}
CUT_NOTE = Sentence(
    "✂️ The answer was cut at the model's length limit: press Continue "
    "(or send /continue) for the rest."
)
"""Under an answer the server ended at its length limit, which is kept as it stands."""


async def show_end(
    ended: Outcome,
    view: AnswerView,
    reason: StopReason,
    replies: ChatReplies,
    target: ReplyTarget,
    health: BackendHealth | None,
) -> list[int]:
    """Finish the answer's messages as it ended (with a note when it was cut or stopped,
    with the reason when it failed), tell `health` how the backend did, and return the
    answer's message ids. `reason` says who stopped a stopped answer."""
    if ended.status is AnswerStatus.COMPLETE:
        if health is not None:
            health.answered()
        message_ids = await view.finish(note=CUT_NOTE if ended.cut else None)
        if ended.cut is not None and message_ids:
            await replies.offer_continue(target, message_ids[-1])
        return message_ids
    if ended.status is AnswerStatus.STOPPED:
        return await view.finish(note=STOP_NOTES[reason])
    failure = ended.failure
    assert failure is not None
    log.warning(
        "answer failed in chat %s (%s): %s",
        target.key.chat_id,
        failure.failure_class.value,
        failure,
    )
    if health is not None:
        health.failed(failure)
    return await view.fail(failure.user_message)


async def record_end(
    store: Store,
    store_retry: StoreRetry,
    key: ConversationKey,
    conversation_id: int,
    user_turn_id: int,
    answer_id: int | None,
    *,
    text: str,
    status: AnswerStatus,
    message_ids: list[int],
    error: str | None,
) -> None:
    """Store how the answer ended (and, if its start could not be stored, the answer
    itself), trying again through a passing outage."""

    async def record() -> None:
        nonlocal answer_id
        if answer_id is None:
            answer_id = await store.start_answer(conversation_id, user_turn_id)
        await store.finish_answer(
            answer_id, text=text, status=status, message_ids=message_ids, error=error
        )

    try:
        await store_retry.run(f"storing the answer in chat {key.chat_id}", record)
    except Exception as exc:
        problem = exc.problem if isinstance(exc, StoreStillUnavailable) else exc
        log.error(
            "the answer to turn %s in chat %s was sent but not stored (%d characters, %s): %s",
            user_turn_id,
            key.chat_id,
            len(text),
            status.value,
            problem,
            exc_info=problem is exc,  # a traceback for the unforeseen
        )
