"""One answer from start to end: load history → stream from the model → store the answer.

The user's turn is already stored when its lane reaches it (see `recorder`); the model's
chunks reach the chat through `generation`, and the answer's end is shown and stored by
`answer_end`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from bot import metrics
from bot.config import Settings
from bot.conversation.answer_end import record_end, show_end
from bot.conversation.answer_order import AnswerSteps, Step
from bot.conversation.checkpoints import CheckpointWriter
from bot.conversation.errors import HistoryUnavailable, NothingToRetry, StoreStillUnavailable
from bot.conversation.generation import FirstChunk, generate, outcome
from bot.conversation.health import BackendHealth
from bot.conversation.lanes import ConversationLanes, StopReason
from bot.conversation.ports import AnswerView, ChatReplies
from bot.conversation.prompt import ChatSetting, build_conversation
from bot.conversation.recorder import AcceptedTurn
from bot.conversation.store_retry import StoreRetry
from bot.conversation.turns import IncomingTurn, ReplyTarget
from bot.logs import log_ids
from bot.phi4 import Backend
from bot.phi4.fitting import fitted_window
from bot.shared import UserFacingError
from bot.shared.tasks import TaskSupervisor
from storage import AnswerRecord, AnswerStatus, ConversationKey, Store, store_unavailable

log = logging.getLogger(__name__)

OUTCOMES: dict[AnswerStatus, metrics.TurnOutcome] = {
    AnswerStatus.COMPLETE: "answered",
    AnswerStatus.STOPPED: "stopped",
    AnswerStatus.FAILED: "failed",
}


class TurnPipeline:
    """Runs turns inside a conversation's lane; every failure ends as a reply in the chat."""

    def __init__(
        self,
        *,
        replies: ChatReplies,
        settings: Settings,
        store: Store,
        backend: Backend,
        lanes: ConversationLanes,
        checkpoints: CheckpointWriter,
        tasks: TaskSupervisor,
        health: BackendHealth | None = None,
        store_retry: StoreRetry | None = None,
        on_step: Callable[[Step], None] | None = None,
    ) -> None:
        self.replies = replies
        self.settings = settings
        self.store = store
        self.backend = backend
        self.lanes = lanes
        self.checkpoints = checkpoints
        self.tasks = tasks
        self.health = health
        self.store_retry = store_retry or StoreRetry(settings.store_retry)
        """Shared with the recorder, so an outage is logged once."""
        self.on_step = on_step
        """Sees every answer's steps (see `answer_order`) as they are taken."""
        self._writing: dict[ConversationKey, AnswerView] = {}

    # -- entry points (each runs inside the conversation's lane) -----------------------

    async def respond(self, turn: IncomingTurn, accepted: Awaitable[AcceptedTurn | None]) -> None:
        """Answer a turn stored on arrival, or tell why it cannot be answered."""
        stored = await accepted
        if stored is None:
            return
        target = turn.target.replying_to(turn.message_id)
        if stored.problem is not None:
            await self._refuse(stored, target, stored.problem)
            return
        await self.answer(
            target, stored.conversation_id, stored.user_turn_id, received_at=turn.received_at
        )

    async def _refuse(
        self, stored: AcceptedTurn, target: ReplyTarget, problem: UserFacingError
    ) -> None:
        """Answer with the reason and record it, so the turn is not taken for unanswered."""
        message_ids = await self.say(target, problem.user_message)
        await record_end(
            self.store,
            self.store_retry,
            target.key,
            stored.conversation_id,
            stored.user_turn_id,
            None,
            text="",
            status=AnswerStatus.FAILED,
            message_ids=message_ids,
            error=type(problem).__name__,
        )
        metrics.count_turn("failed")

    async def retry(self, target: ReplyTarget) -> None:
        """Answer the conversation's last user turn again, replacing its earlier answer."""
        conversation_id = await self.store.current_conversation(target.key)
        last = await self.store.last_user_turn(conversation_id)
        if last is None:
            await self.say(target, NothingToRetry().user_message)
            return
        await self.store.replace_answers_after(last.turn_id)
        await self.answer(target, conversation_id, last.turn_id)

    async def regenerate(self, target: ReplyTarget, answer_turn_id: int) -> None:
        """Answer again the question of the conversation's newest answer, rewriting that
        answer's messages; nothing happens if a newer answer came first."""
        conversation_id = await self.store.current_conversation(target.key)
        latest = await self.store.latest_answer(conversation_id)
        if latest is None or latest.answer_turn_id != answer_turn_id:
            return
        await self._answer_again(target, conversation_id, latest)

    async def answer_edited(self, target: ReplyTarget, user_turn_id: int) -> None:
        """Answer an edited question again, rewriting its answer's messages, if it is still
        the newest question of the current conversation and was answered already."""
        conversation_id = await self.store.current_conversation(target.key)
        latest = await self.store.latest_answer(conversation_id)
        last = await self.store.last_user_turn(conversation_id)
        if latest is None or latest.user_turn_id != user_turn_id:
            return
        if last is None or last.turn_id != user_turn_id:
            return  # a newer question came first; the edit stays in history
        await self._answer_again(target, conversation_id, latest)

    async def _answer_again(
        self, target: ReplyTarget, conversation_id: int, latest: AnswerRecord
    ) -> None:
        await self.store.replace_answers_after(latest.user_turn_id)
        await self.answer(
            target.replying_to(latest.user_message_id),
            conversation_id,
            latest.user_turn_id,
            take_over=latest.message_ids,
        )

    async def latest_answer(self, key: ConversationKey) -> AnswerRecord | None:
        """The current conversation's newest answer (the one being written, if any)."""
        return await self.store.latest_answer(await self.store.current_conversation(key))

    def answer_being_written(self, key: ConversationKey) -> list[int] | None:
        """The messages of the answer being written in the conversation, if one is."""
        view = self._writing.get(key)
        return None if view is None else view.message_ids

    # -- the answer ---------------------------------------------------------------------

    async def answer(
        self,
        target: ReplyTarget,
        conversation_id: int,
        user_turn_id: int,
        *,
        take_over: Sequence[int] = (),
        received_at: float | None = None,
    ) -> None:
        """Stream the model's answer to the stored turn `user_turn_id` and record how it ended.

        `take_over` names messages of an earlier answer to this turn, rewritten into this one.
        `received_at` is when the user's message was read (`time.monotonic()`), for the time
        to first text; log lines written meanwhile carry the conversation and turn ids.
        """
        with log_ids(conversation_id=conversation_id, turn_id=user_turn_id):
            await self._answer(target, conversation_id, user_turn_id, take_over, received_at)

    async def _answer(
        self,
        target: ReplyTarget,
        conversation_id: int,
        user_turn_id: int,
        take_over: Sequence[int],
        received_at: float | None,
    ) -> None:
        key = target.key
        steps = AnswerSteps(self.on_step)
        steps.reach(Step.TURN_STORED)
        # One read: under a flood each store call waits its turn behind every other chat's,
        # so fewer calls mean an earlier request to the model.
        read_inputs = partial(
            self.store.prompt_inputs,
            conversation_id,
            chat_id=key.chat_id,
            prompt_setting=ChatSetting.SYSTEM_PROMPT,
            char_budget=self.settings.history_read_chars(fitted_window(self.backend)),
            media_limit=self.settings.history_media,
            until_turn_id=user_turn_id,
        )
        try:
            inputs = await self.store_retry.run(f"reading chat {key.chat_id}", read_inputs)
        except StoreStillUnavailable as exc:
            log.error(
                "turn %s in chat %s is stored but not answered: %s",
                user_turn_id,
                key.chat_id,
                exc.problem,
            )
            await self.say(target, HistoryUnavailable().user_message)
            return
        conversation = build_conversation(
            inputs.history,
            system_prompt=self._or_default(inputs.system_prompt),
            label_senders=target.is_group and target.guest is None,  # a guest's is one caller's
        )
        view = self.replies.open_answer(target, controls=True, take_over=take_over)
        started_at, first_chunk = time.monotonic(), FirstChunk()
        generation = asyncio.create_task(
            generate(
                self.backend,
                self.replies,
                self.tasks,
                target,
                conversation,
                view,
                first_chunk,
                steps,
            )
        )
        steps.reach(Step.REQUESTED)
        self.lanes.set_generation(key, generation)
        self._writing[key] = view
        answer_id: int | None = None
        try:  # the request is on its way meanwhile; a crash before this leaves a waiting turn
            answer_id = await self.store.start_answer(conversation_id, user_turn_id)
        except Exception as exc:  # the answer still reaches the chat; its row comes after
            log.error(
                "the answer in chat %s could not be recorded as started: %s",
                key.chat_id,
                exc,
                exc_info=store_unavailable(exc) is None,  # a traceback for the unforeseen
            )
        except BaseException:
            generation.cancel()
            await asyncio.wait([generation])
            self.lanes.set_generation(key, None)
            self._writing.pop(key, None)
            raise
        if answer_id is not None:
            steps.reach(Step.ROW_STORED)
            self.checkpoints.watch(answer_id, view)  # so a crash leaves the partial answer
            steps.reach(Step.WATCHED)
        metrics.answers_streaming(+1)
        try:
            ended = await outcome(generation, key.chat_id)
        finally:
            metrics.answers_streaming(-1)
            steps.reach(Step.GENERATED)
            if answer_id is not None:
                self.checkpoints.forget(answer_id)  # before its end is stored, never after
                steps.reach(Step.UNWATCHED)
            reason = self.lanes.stop_reason(key) or StopReason.USER
            self.lanes.set_generation(key, None)
            self._writing.pop(key, None)
        message_ids = await show_end(ended, view, reason, self.replies, target, self.health)
        steps.reach(Step.SHOWN)
        await record_end(
            self.store,
            self.store_retry,
            key,
            conversation_id,
            user_turn_id,
            answer_id,
            text=view.text,
            status=ended.status,
            message_ids=message_ids,
            error=None if ended.failure is None else type(ended.failure).__name__,
        )
        steps.reach(Step.RECORDED)
        metrics.record_answer(
            OUTCOMES[ended.status],
            received_at=received_at,
            started_at=started_at,
            first_chunk_at=first_chunk.at,
            shown_at=view.answer_shown_at,
            ended_at=time.monotonic(),
            length=len(view.text),
        )

    # -- small helpers --------------------------------------------------------------------

    async def system_prompt(self, chat_id: int) -> str:
        """The chat's own system prompt, or the configured one."""
        return self._or_default(await self.store.get_setting(chat_id, ChatSetting.SYSTEM_PROMPT))

    def _or_default(self, custom: str | None) -> str:
        return custom if custom is not None else self.settings.system_prompt

    async def say(self, target: ReplyTarget, markdown: str) -> list[int]:
        """Send a short bot message through the same pacing and rendering as answers."""
        return await self.replies.say(target, markdown)
