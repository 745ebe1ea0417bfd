"""Admitting a read turn: per-user limits, recording on arrival, then a place in its lane."""

from __future__ import annotations

import logging
from functools import partial

from bot.conversation.access import AccessPolicy, UserRateLimiter
from bot.conversation.errors import TurnRejected
from bot.conversation.lanes import ConversationLanes
from bot.conversation.notices import Notices
from bot.conversation.pipeline import TurnPipeline
from bot.conversation.recorder import TurnRecorder
from bot.conversation.sharing import SharedAnswering
from bot.conversation.turns import IncomingTurn, ReplyTarget
from bot.shared.tasks import TaskSupervisor
from storage import AnswerStatus, ConversationKey

log = logging.getLogger(__name__)


class TurnDispatcher:
    """Takes every turn the adapter reads and sees it answered or refused with a reply.

    Refusals that cost nothing (rate, a full queue) are decided before anything is stored;
    an admitted turn is recorded at once and its answer queued in the conversation's lane.
    With a database shared by several processes the lanes here hold only what this process
    answers, so a full queue is counted by the database as the turn is stored (see
    `TurnRecorder`), still before anything is written for it.
    Replies outside any lane (refusals) go out as `notices`; other work outside the lanes
    runs under the process's `tasks`, so shutdown waits for it.
    """

    def __init__(
        self,
        *,
        pipeline: TurnPipeline,
        lanes: ConversationLanes,
        recorder: TurnRecorder,
        access: AccessPolicy,
        limiter: UserRateLimiter,
        notices: Notices,
        tasks: TaskSupervisor,
        shared: SharedAnswering | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.lanes = lanes
        self.recorder = recorder
        self.access = access
        self.limiter = limiter
        self.notices = notices
        self.tasks = tasks
        self.shared = shared
        """Set when other processes share the database: they may answer this turn."""

    def submit(self, turn: IncomingTurn) -> None:
        """Record `turn` and queue its answer, or reply with why it is refused."""
        sender = turn.sender_id
        exempt = sender is None or self.access.is_admin(sender)
        try:
            if sender is not None and not exempt:
                self.limiter.check(sender)
            self.lanes.check_room(turn.key, user_id=sender)
        except TurnRejected as problem:
            self.tell(turn.target.replying_to(turn.message_id), problem.user_message)
            return
        accepted = self.recorder.accept(turn, exempt=exempt)
        if self.shared is not None:
            self.tasks.spawn(self.shared.arrived(turn, accepted), name=f"arrival-{turn.key}")
            return
        self.lanes.submit(turn.key, partial(self.pipeline.respond, turn, accepted), user_id=sender)

    def revise(self, turn: IncomingTurn) -> None:
        """A message was edited: its stored turn (if the bot took it) gets the new text, and
        the conversation's newest question, once answered, is answered again."""
        name = f"revise-message-{turn.message_id}-{turn.key}"
        self.recorder.in_order(turn.key, partial(self._revise, turn), name=name)

    async def _revise(self, turn: IncomingTurn) -> None:
        if turn.rejection is not None:
            return  # now too long, say: the stored turn stays as it was answered
        store = self.pipeline.store
        text = await self.recorder.revised_text(turn)
        edited = await store.edit_user_turn(turn.key.chat_id, turn.message_id, text)
        if edited is None or not edited.changed or not edited.newest:
            return  # never taken, delivered twice, or an older message: history only
        if await store.current_conversation(turn.key) != edited.conversation_id:
            return
        latest = await store.latest_answer(edited.conversation_id)
        if latest is None or latest.user_turn_id != edited.user_turn_id:
            return  # still waiting for its answer, which will read the new text
        sender = turn.sender_id
        target = turn.target.replying_to(turn.message_id)
        try:
            if sender is not None and not self.access.is_admin(sender):
                self.limiter.check(sender)
            if latest.status is AnswerStatus.STREAMING:
                await self.stop(turn.key)  # answering the old words is no use any more
            job = partial(self.pipeline.answer_edited, target, edited.user_turn_id)
            self.lanes.submit(turn.key, job, user_id=sender)
        except TurnRejected as problem:
            self.tell(target, problem.user_message)

    async def stop(self, key: ConversationKey) -> bool:
        """/stop: the answer being written in the conversation stops, here or in whichever
        process sharing the database writes it; False when none is being written."""
        if self.lanes.stop(key):
            return True
        return self.shared is not None and await self.shared.coordination.stop_elsewhere(key)

    def tell(self, target: ReplyTarget, text: str) -> None:
        """Send a short reply at once, outside the conversation's lane."""
        self.notices.tell(target, text)
