"""Every Bot API request through the bot's one `RateBudget`: python-telegram-bot's rate limiter.

Installed on the `Application`, this sees each request PTB sends (all but `getUpdates`, the
long poll Telegram does not count). A request whose caller already holds a slot of the
budget for it (`RateBudget.slot`, or the streamer's render-at-grant acquire) goes at once
(a request about a guest message, which names no chat, in the slot of the chat it is in);
any other request waits for its own slot first: a chat's slot for what Telegram counts
against the chat (sending, editing, deleting, chat actions), a bot-wide one for the rest.
So nothing reaches Telegram unpaced, whoever sends it.

A 429 tells the budget (`RateBudget.penalize`), here and nowhere else, so every later
request to that chat (or from the bot) waits out the penalty; a request about a guest
message holds the bot and the chat whose slot it used. A request this limiter paced itself
is then sent again once, after the penalty, unless it is a chat action, which is stale by
then.
"""

from __future__ import annotations

import datetime as dtm
import logging
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from telegram._utils.types import JSONDict
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

from bot.telegram.streaming.pacing import Priority, RateBudget

log = logging.getLogger(__name__)

# What Telegram counts against a chat: the methods that change what the chat shows.
_CHAT_METHOD_PREFIXES = ("send", "edit", "delete", "copy", "forward", "pin", "unpin", "stop")
_CHAT_ACTION = "sendChatAction"
RETRIES = 1
"""How many times a request this limiter paced is sent again after a 429."""

Result = bool | JSONDict | list[JSONDict]


def chat_of(endpoint: str, data: dict[str, Any]) -> int | None:
    """The chat a request is charged to, or None when Telegram counts it against the bot
    alone (reads, callback answers, commands, edits of inline messages)."""
    chat_id = data.get("chat_id")
    if not isinstance(chat_id, int) or not endpoint.startswith(_CHAT_METHOD_PREFIXES):
        return None
    return chat_id


def priority_of(endpoint: str) -> Priority:
    """New messages and answers to a waiting user go first; changes to shown messages next;
    chat actions last, since they matter only while nothing else is being sent."""
    if endpoint == _CHAT_ACTION:
        return Priority.EDIT
    if endpoint.startswith(("edit", "delete", "pin", "unpin", "stop")):
        return Priority.FINAL
    return Priority.FIRST


class BudgetRateLimiter(BaseRateLimiter[None]):
    """PTB's `BaseRateLimiter` over the bot's `RateBudget`."""

    def __init__(self, budget: RateBudget) -> None:
        self.budget = budget

    async def initialize(self) -> None:
        """Nothing to open: the budget lives as long as the application."""

    async def shutdown(self) -> None:
        """Nothing to close: requests still waiting end with their callers."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> Result:
        chat_id = chat_of(endpoint, data)
        if "inline_message_id" in data or "guest_query_id" in data:
            claimed, held_for = self.budget.claim_held()  # a guest message's, paced as its chat
            if claimed:
                return await self._send(callback, args, kwargs, chat_id, also=held_for)
        elif self.budget.claim(chat_id):  # the caller waited for this request's slot already
            return await self._send(callback, args, kwargs, chat_id)
        is_group, priority = chat_id is not None and chat_id < 0, priority_of(endpoint)
        attempt = 0
        while True:
            async with self.budget.slot(chat_id, is_group=is_group, priority=priority):
                self.budget.claim(chat_id)
                try:
                    return await self._send(callback, args, kwargs, chat_id)
                except RetryAfter:
                    if attempt >= RETRIES or endpoint == _CHAT_ACTION:
                        raise
            attempt += 1
            log.info("%s: sent again after flood control", endpoint)

    async def _send(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        chat_id: int | None,
        *,
        also: int | None = None,
    ) -> Result:
        """Send the request; a 429 penalises `chat_id` (None: the bot) and the chat `also`
        names (the one a guest message shows in, whose slot it used)."""
        try:
            return await callback(*args, **kwargs)
        except RetryAfter as exc:
            seconds = retry_after_seconds(exc)
            self.budget.penalize(chat_id, seconds)
            if also is not None and also != chat_id:
                self.budget.penalize(also, seconds)
            raise


def retry_after_seconds(exc: RetryAfter) -> float:
    """`retry_after` in seconds, whichever type this PTB version hands out."""
    with warnings.catch_warnings():
        # PTB warns that the attribute will become a timedelta; both are handled here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)
