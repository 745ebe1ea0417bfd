"""One turn from start to end: store the user's turn → load history → stream → store the answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.arrivals import AcceptedTurn
from bot.config import Settings
from bot.context import build_conversation
from bot.errors import NothingToRetry
from bot.intake import IncomingTurn
from bot.lanes import ConversationLanes
from bot.pacing import RateBudget
from bot.phi4 import Backend, Conversation, Phi4Error, QueuePosition
from bot.phi4.errors import UserFacingError
from bot.streamer import ReplyStreamer
from bot.telegram_sink import TelegramSink
from storage import AnswerStatus, ConversationKey, Store

log = logging.getLogger(__name__)

SYSTEM_PROMPT_SETTING = "system_prompt"
STOP_NOTES = {
    "stopped": "⏹ Stopped.",
    "shutdown": "⏹ Stopped: the bot is restarting. Send /retry for a full answer.",
}
TYPING_EVERY = 4.0
CHECKPOINT_EVERY = 2.0
FIRST_CHECKPOINT_EVERY = 0.2


class TurnPipeline:
    """Runs turns inside a conversation's lane; every failure ends as a reply in the chat."""

    def __init__(
        self,
        *,
        bot: Bot,
        settings: Settings,
        store: Store,
        backend: Backend,
        budget: RateBudget,
        lanes: ConversationLanes,
    ) -> None:
        self.bot = bot
        self.settings = settings
        self.store = store
        self.backend = backend
        self.budget = budget
        self.lanes = lanes

    # -- entry points (each runs inside the conversation's lane) -----------------------

    async def respond(self, turn: IncomingTurn, accepted: Awaitable[AcceptedTurn | None]) -> None:
        """Answer a turn stored on arrival, or tell why it cannot be answered."""
        stored = await accepted
        if stored is None:
            return
        if stored.problem is not None:
            await self._refuse(stored.conversation_id, stored.user_turn_id, turn, stored.problem)
            return
        await self.answer(
            turn.key, stored.conversation_id, stored.user_turn_id, turn.is_group, turn.message_id
        )

    async def _refuse(
        self,
        conversation_id: int,
        user_turn_id: int,
        turn: IncomingTurn,
        problem: UserFacingError,
    ) -> None:
        """Answer with the reason and record it, so the turn is not taken for unanswered."""
        answer_id = await self.store.start_answer(conversation_id, user_turn_id)
        message_ids = await self.say(
            turn.key, problem.user_message, turn.is_group, reply_to=turn.message_id
        )
        await self.store.finish_answer(
            answer_id,
            text="",
            status=AnswerStatus.FAILED,
            message_ids=message_ids,
            error=type(problem).__name__,
        )

    async def retry(self, key: ConversationKey, is_group: bool, reply_to: int | None) -> None:
        """Answer the conversation's last user turn again, replacing its earlier answer."""
        conversation_id = await self.store.current_conversation(key)
        last = await self.store.last_user_turn(conversation_id)
        if last is None:
            await self.say(key, NothingToRetry().user_message, is_group, reply_to=reply_to)
            return
        await self.store.replace_answers_after(last.turn_id)
        await self.answer(key, conversation_id, last.turn_id, is_group, reply_to)

    # -- the answer ---------------------------------------------------------------------

    async def answer(
        self,
        key: ConversationKey,
        conversation_id: int,
        user_turn_id: int,
        is_group: bool,
        reply_to: int | None,
    ) -> None:
        system_prompt = await self.system_prompt(key.chat_id)
        history = await self.store.history(
            conversation_id,
            char_budget=self.settings.history_chars,
            media_limit=self.settings.history_media,
            until_turn_id=user_turn_id,
        )
        conversation = build_conversation(
            history, system_prompt=system_prompt, label_senders=is_group
        )
        answer_id = await self.store.start_answer(conversation_id, user_turn_id)
        streamer = self._streamer(key, is_group, reply_to)
        generation = asyncio.create_task(self._generate(key, conversation, streamer))
        checkpoints = asyncio.create_task(self._checkpoint(answer_id, streamer))
        self.lanes.set_generation(key, generation)
        status, failure = AnswerStatus.COMPLETE, None
        try:
            await generation
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            status = AnswerStatus.STOPPED
        except Phi4Error as exc:
            status, failure = AnswerStatus.FAILED, exc
        except Exception as exc:
            log.exception("the answer in chat %s failed", key.chat_id)
            status, failure = AnswerStatus.FAILED, Phi4Error(str(exc))
        finally:
            checkpoints.cancel()
            reason = self.lanes.stop_reason(key) or "stopped"
            self.lanes.set_generation(key, None)
        if status is AnswerStatus.COMPLETE:
            message_ids = await streamer.finish()
        elif status is AnswerStatus.STOPPED:
            message_ids = await streamer.finish(note=STOP_NOTES.get(reason, STOP_NOTES["stopped"]))
        else:
            assert failure is not None
            log.warning("answer failed in chat %s: %s", key.chat_id, failure)
            message_ids = await streamer.fail(failure.user_message)
        await self.store.finish_answer(
            answer_id,
            text=streamer.text,
            status=status,
            message_ids=message_ids,
            error=None if failure is None else type(failure).__name__,
        )

    async def _generate(
        self, key: ConversationKey, conversation: Conversation, streamer: ReplyStreamer
    ) -> None:
        """Pump the model's chunks into the streamer; typing is shown until the first one."""
        typing = asyncio.create_task(self._keep_typing(key))
        pending_status: set[asyncio.Task[None]] = set()

        def on_queue(position: QueuePosition) -> None:
            if streamer.text:
                return
            task = asyncio.create_task(
                streamer.show_status(f"⏳ In queue: position {position.rank + 1}")
            )
            pending_status.add(task)
            task.add_done_callback(pending_status.discard)

        try:
            async for chunk in self.backend.stream(conversation, on_queue=on_queue):
                if not typing.done():
                    typing.cancel()
                streamer.append(chunk)
        finally:
            typing.cancel()
            for task in list(pending_status):
                task.cancel()

    async def _checkpoint(self, answer_id: int, streamer: ReplyStreamer) -> None:
        """Save the partial answer now and then, so a crash leaves it and its messages.

        Until the first message is out this looks often, so that even an answer cut off
        in its first second is recorded with the message that shows it.
        """
        saved: tuple[int, list[int]] = (0, [])
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY if saved[1] else FIRST_CHECKPOINT_EVERY)
            state = (len(streamer.text), list(streamer.message_ids))
            if state != saved:
                await self.store.update_answer(
                    answer_id, text=streamer.text, message_ids=streamer.message_ids
                )
                saved = state

    async def _keep_typing(self, key: ConversationKey) -> None:
        """Renew the "typing…" indicator (Telegram shows it for ~5 s) until cancelled."""
        while True:
            try:
                await self.bot.send_chat_action(
                    key.chat_id, ChatAction.TYPING, message_thread_id=key.thread_id
                )
            except TelegramError as exc:
                log.debug("typing indicator failed: %s", exc)
            await asyncio.sleep(TYPING_EVERY)

    # -- small helpers --------------------------------------------------------------------

    def _streamer(
        self, key: ConversationKey, is_group: bool, reply_to: int | None, *, drafts: bool = True
    ) -> ReplyStreamer:
        private_drafts = drafts and not is_group and self.settings.private_streaming == "draft"
        return ReplyStreamer(
            TelegramSink(self.bot, key.chat_id, key.thread_id),
            self.budget,
            chat_id=key.chat_id,
            is_group=is_group,
            interval=self.settings.group_edit_interval if is_group else self.settings.edit_interval,
            reply_to=reply_to,
            mode="draft" if private_drafts else "edit",
        )

    async def system_prompt(self, chat_id: int) -> str:
        custom = await self.store.get_setting(chat_id, SYSTEM_PROMPT_SETTING)
        return custom if custom is not None else self.settings.system_prompt

    async def say(
        self, key: ConversationKey, markdown: str, is_group: bool, *, reply_to: int | None = None
    ) -> list[int]:
        """Send a short bot message through the same pacing and rendering as answers."""
        streamer = self._streamer(key, is_group, reply_to, drafts=False)
        streamer.append(markdown)
        return await streamer.finish()
