"""What a dead process left undone, dealt with at start-up.

Turns still waiting for an answer are answered now: they never started, so they cannot be
what brought the process down. Answers cut off mid-way get a notice instead (one per
conversation), and `/retry` answers them if the user wants.
"""

from __future__ import annotations

from functools import partial

from bot import metrics
from bot.conversation.dispatcher import TurnDispatcher
from bot.conversation.guest_recovery import mark_guest_interrupted
from bot.conversation.notices import by_conversation, notice_target, restart_notice
from bot.conversation.turns import ReplyTarget, guest_caller
from storage import PendingAnswer


def resume_unfinished(dispatcher: TurnDispatcher, found: list[PendingAnswer]) -> None:
    """Queue the waiting turns in their lanes and send the notices for cut-off answers."""
    pipeline = dispatcher.pipeline
    for pending in sorted(found, key=lambda p: p.user_turn_id):
        if pending.assistant_turn_id is None and pending.conversation_id is not None:
            if guest_caller(pending.key) is not None:
                continue  # its summon can no longer be answered
            target = ReplyTarget.for_stored(pending.key, pending.user_message_id)
            job = partial(pipeline.answer, target, pending.conversation_id, pending.user_turn_id)
            dispatcher.lanes.submit(pending.key, job)
    cut = [p for p in found if p.assistant_turn_id is not None]
    for _ in cut:
        metrics.count_turn("interrupted")
    for key, pending_here in by_conversation(cut).items():
        if guest_caller(key) is not None:
            work = mark_guest_interrupted(pipeline, key, pending_here)
            dispatcher.tasks.spawn(work, name=f"guest-restart-note-{key}")
            continue
        target = ReplyTarget.for_stored(key, notice_target(pending_here))
        dispatcher.tell(target, restart_notice(pending_here))
