"""The core's `ChatReplies` port on Telegram: paced answer views and the typing indicator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Literal

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.conversation.turns import GuestPlace, ReplyTarget
from bot.shared import Sentence, translate
from bot.shared.tasks import TaskSupervisor
from bot.telegram.streaming import guest_codes as codes
from bot.telegram.streaming.buttons import NO_BUTTONS, Button, Keyboard
from bot.telegram.streaming.guest_sink import GuestSink, OneMessage
from bot.telegram.streaming.pacing import Priority, RateBudget
from bot.telegram.streaming.sink import SinkError, TelegramSink
from bot.telegram.streaming.streamer import ReplyOptions, ReplyStreamer
from storage import ConversationKey

log = logging.getLogger(__name__)

TYPING_AFTER = 1.0
"""Typing is shown once the model has been silent this long: an answer that starts sooner
needs none, and each indicator spends one of the chat's request slots."""
TYPING_EVERY = 4.0  # Telegram shows "typing…" for about 5 s
TYPING_RETRY = 0.25  # after finding no free slot for it (trying costs no request)
# Callback data of the buttons under answers.
STOP = "stop"
REGENERATE = "regenerate"
CONTINUE = "continue"
STOP_LABEL = Sentence("⏹ Stop")
REGENERATE_LABEL = Sentence("🔄 Regenerate")
MORE_LABEL = Sentence("Read it all in a private chat")
GUEST_PLACEHOLDER = "…"
GUEST_PLACEHOLDER_AFTER = 1.0
"""Seconds a guest answer waits for the model's first words before answering the summon
with "…": answered with text, it shows the answer 3 s sooner (guest messages are paced
like a group's); answered with "…", a slow model does not leave the summon hanging."""
CONTINUE_LABEL = Sentence("▶️ Continue")
TYPING_AT_ONCE = 8
"""Chat actions in flight at once. A flood of new chats would otherwise queue hundreds of
them in the HTTP client's pool, whose bookkeeping grows with the queue times the pool size,
and the answers' own messages would wait behind them."""


class TelegramReplies:
    """Opens one `ReplyStreamer` per answer, all drawing on the bot's one `RateBudget`.

    Answers opened with `controls` carry a Stop button while they are written and a
    Regenerate button once finished; only a conversation's newest answer keeps Regenerate,
    so opening the next one removes it from the previous one with one paced edit.
    """

    def __init__(
        self,
        bot: Bot,
        budget: RateBudget,
        *,
        tasks: TaskSupervisor,
        edit_interval: float,
        group_edit_interval: float,
        private_streaming: Literal["edit", "draft"] = "edit",
        remember_guest: Callable[[GuestPlace, str], Awaitable[None]] | None = None,
    ) -> None:
        self.bot = bot
        self._remember_guest = remember_guest
        """Keeps a guest answer's `inline_message_id` where a restart finds it."""
        self.budget = budget
        self._edit_interval = edit_interval
        self._group_edit_interval = group_edit_interval
        self._private_streaming = private_streaming
        self._regenerable: dict[ConversationKey, int] = {}
        self._tasks = tasks
        self._typing_slots = asyncio.Semaphore(TYPING_AT_ONCE)

    def open_answer(
        self,
        target: ReplyTarget,
        *,
        drafts: bool = True,
        controls: bool = False,
        take_over: Sequence[int] = (),
    ) -> ReplyStreamer:
        if target.guest is not None:
            return self._open_guest(target, target.guest, controls=controls, take_over=take_over)
        key = target.key
        private_drafts = drafts and not target.is_group and self._private_streaming == "draft"
        streaming, final = NO_BUTTONS, NO_BUTTONS
        on_finished = None
        if controls:
            streaming = (Button(translate(STOP_LABEL, target.language), STOP),)
            final = (Button(translate(REGENERATE_LABEL, target.language), REGENERATE),)
            previous = self._regenerable.pop(key, None)
            if previous is not None and previous not in take_over:
                self._tasks.spawn(
                    self.remove_buttons(target, previous), name=f"remove-buttons-{key.chat_id}"
                )

            def on_finished(message_ids: list[int]) -> None:
                if message_ids:
                    self._regenerable[key] = message_ids[-1]

        options = ReplyOptions(
            chat_id=key.chat_id,
            is_group=target.is_group,
            interval=self._group_edit_interval if target.is_group else self._edit_interval,
            reply_to=target.reply_to,
            mode="draft" if private_drafts else "edit",
            streaming_buttons=streaming,
            final_buttons=final,
            take_over=take_over,
        )
        return ReplyStreamer(
            TelegramSink(self.bot, key.chat_id, key.thread_id),
            self.budget,
            options,
            on_finished=on_finished,
            translate=partial(translate, language=target.language),
        )

    def _open_guest(
        self,
        target: ReplyTarget,
        place: GuestPlace,
        *,
        controls: bool,
        take_over: Sequence[int],
    ) -> ReplyStreamer:
        """A guest answer: one message, answering the summon with the first text (or "…"
        if the model is slow to start), paced like a group message, with its own Stop and
        Regenerate buttons, cut with a link to the whole answer if too long."""
        streaming: Keyboard = NO_BUTTONS
        final: Keyboard = NO_BUTTONS
        if controls:
            stop = codes.button_data(codes.STOP, place.chat_id, place.caller_id)
            again = codes.button_data(codes.REGENERATE, place.chat_id, place.caller_id)
            streaming = (Button(translate(STOP_LABEL, target.language), stop),)
            final = (Button(translate(REGENERATE_LABEL, target.language), again),)
        more_url = None
        if target.reply_to is not None and self.bot.username:
            whole = codes.WholeAnswer(place.chat_id, place.caller_id, target.reply_to)
            more_url = f"https://t.me/{self.bot.username}?start={whole.payload}"
        one_message = OneMessage()
        remember = self._remember_guest

        def on_answered(inline_message_id: str) -> None:
            if remember is not None and controls:  # answers only: a refusal stores nothing
                self._tasks.spawn(
                    self._remember(remember, place, inline_message_id),
                    name=f"remember-guest-{place.chat_id}",
                )

        sink = GuestSink(
            self.bot,
            query_id=place.query_id,
            inline_message_id=place.inline_message_id,
            one_message=one_message,
            more_label=translate(MORE_LABEL, target.language),
            more_url=more_url,
            on_answered=on_answered,
        )
        options = ReplyOptions(
            chat_id=place.chat_id,
            is_group=True,
            interval=self._group_edit_interval,
            reply_to=None,
            streaming_buttons=streaming,
            final_buttons=final,
            take_over=take_over,
        )
        view = ReplyStreamer(
            sink,
            self.budget,
            options,
            translate=partial(translate, language=target.language),
            split=one_message,
        )
        if controls:
            self._tasks.spawn(
                self._placeholder(view),
                name=f"guest-placeholder-{place.chat_id}",
                cancel_at_shutdown=True,  # a placeholder matters only while answers stream
            )
        return view

    @staticmethod
    async def _placeholder(view: ReplyStreamer) -> None:
        await asyncio.sleep(GUEST_PLACEHOLDER_AFTER)
        await view.show_status(GUEST_PLACEHOLDER)  # nothing, if text came first

    @staticmethod
    async def _remember(
        remember: Callable[[GuestPlace, str], Awaitable[None]],
        place: GuestPlace,
        inline_message_id: str,
    ) -> None:
        try:
            await remember(place, inline_message_id)
        except Exception as exc:  # the answer goes on; only a crash would need it
            log.warning("guest message in chat %s not remembered: %s", place.chat_id, exc)

    async def say(self, target: ReplyTarget, text: str) -> list[int]:
        """Send a short bot message in the reader's language, paced and rendered like
        answers, without buttons."""
        view = self.open_answer(target, drafts=False)
        view.append(translate(text, target.language))
        return await view.finish()

    async def offer_continue(self, target: ReplyTarget, message_id: int) -> None:
        """Regenerate and Continue under a cut answer's last message; like Regenerate, they
        leave it when the conversation's next answer starts. A guest answer keeps its own
        Regenerate only: its message cannot take a continuation."""
        if target.guest is not None:
            return
        buttons = (
            Button(translate(REGENERATE_LABEL, target.language), REGENERATE),
            Button(translate(CONTINUE_LABEL, target.language), CONTINUE),
        )
        await self._set_buttons(target, message_id, buttons)

    async def remove_buttons(self, target: ReplyTarget, message_id: int) -> None:
        """Remove the buttons under one message, with one request paced like every other;
        a refusal is logged and the buttons left as they are."""
        if self._regenerable.get(target.key) == message_id:
            del self._regenerable[target.key]
        await self._set_buttons(target, message_id, NO_BUTTONS)

    async def _set_buttons(self, target: ReplyTarget, message_id: int, buttons: Keyboard) -> None:
        key = target.key
        sink = TelegramSink(self.bot, key.chat_id, key.thread_id)
        try:
            async with self.budget.slot(
                key.chat_id, is_group=target.is_group, priority=Priority.FINAL
            ):
                await sink.edit_buttons(message_id, buttons)
        except SinkError as exc:  # a 429 among them: the budget has been told
            log.info("chat %s: buttons of message %s left: %s", key.chat_id, message_id, exc)

    @asynccontextmanager
    async def typing(self, target: ReplyTarget) -> AsyncIterator[None]:
        """Show "typing…" in the chat from `TYPING_AFTER` seconds on until the block ends
        (not as a guest: a chat the bot is not a member of shows nothing of it)."""
        if target.guest is not None:
            yield
            return
        renewing = asyncio.create_task(self._keep_typing(target))
        try:
            yield
        finally:
            renewing.cancel()

    async def _keep_typing(self, target: ReplyTarget) -> None:
        """Typing is shown only in a slot nobody else wants this instant: it must never
        delay a message, so a busy chat or bot tries again shortly instead of queueing."""
        key = target.key
        await asyncio.sleep(TYPING_AFTER)
        while True:
            shown = False
            try:
                async with self._typing_slots:  # cancelled while waiting: never sent, not needed
                    with self.budget.slot_if_free(key.chat_id, is_group=target.is_group) as shown:
                        if shown:
                            await self.bot.send_chat_action(
                                key.chat_id, ChatAction.TYPING, message_thread_id=key.thread_id
                            )
            except TelegramError as exc:
                log.debug("typing indicator failed: %s", exc)
            await asyncio.sleep(TYPING_EVERY if shown else TYPING_RETRY)
