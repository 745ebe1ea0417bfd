"""The core's `ChatReplies` port on Telegram: paced answer views and the typing indicator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.conversation.turns import ReplyTarget
from bot.telegram.streaming.pacing import RateBudget
from bot.telegram.streaming.sink import TelegramSink
from bot.telegram.streaming.streamer import ReplyStreamer

log = logging.getLogger(__name__)

TYPING_EVERY = 4.0  # Telegram shows "typing…" for about 5 s


class TelegramReplies:
    """Opens one `ReplyStreamer` per answer, all drawing on the bot's one `RateBudget`."""

    def __init__(
        self,
        bot: Bot,
        budget: RateBudget,
        *,
        edit_interval: float,
        group_edit_interval: float,
        private_streaming: Literal["edit", "draft"] = "edit",
    ) -> None:
        self.bot = bot
        self.budget = budget
        self._edit_interval = edit_interval
        self._group_edit_interval = group_edit_interval
        self._private_streaming = private_streaming

    def open_answer(self, target: ReplyTarget, *, drafts: bool = True) -> ReplyStreamer:
        key = target.key
        private_drafts = drafts and not target.is_group and self._private_streaming == "draft"
        return ReplyStreamer(
            TelegramSink(self.bot, key.chat_id, key.thread_id),
            self.budget,
            chat_id=key.chat_id,
            is_group=target.is_group,
            interval=self._group_edit_interval if target.is_group else self._edit_interval,
            reply_to=target.reply_to,
            mode="draft" if private_drafts else "edit",
        )

    @asynccontextmanager
    async def typing(self, target: ReplyTarget) -> AsyncIterator[None]:
        """Renew "typing…" in the chat until the block ends."""
        renewing = asyncio.create_task(self._keep_typing(target))
        try:
            yield
        finally:
            renewing.cancel()

    async def _keep_typing(self, target: ReplyTarget) -> None:
        key = target.key
        while True:
            try:
                await self.bot.send_chat_action(
                    key.chat_id, ChatAction.TYPING, message_thread_id=key.thread_id
                )
            except TelegramError as exc:
                log.debug("typing indicator failed: %s", exc)
            await asyncio.sleep(TYPING_EVERY)
