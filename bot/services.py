"""The shared services of one running bot, kept in `application.bot_data`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from telegram import Message
from telegram.ext import ContextTypes

from bot.access import AccessPolicy, UserRateLimiter
from bot.albums import AlbumCollector
from bot.arrivals import TurnArrivals
from bot.config import Settings
from bot.errors import TurnRejected
from bot.intake import turn_from_messages
from bot.lanes import ConversationLanes
from bot.pipeline import TurnPipeline
from bot.triggers import BotIdentity, conversation_key, is_group, is_private

log = logging.getLogger(__name__)

SERVICES_KEY = "phi4bot"


@dataclass(slots=True)
class BotServices:
    """Everything a handler needs; built once in `bot.app` after the bot knows who it is."""

    settings: Settings
    identity: BotIdentity
    pipeline: TurnPipeline
    lanes: ConversationLanes
    access: AccessPolicy
    limiter: UserRateLimiter
    arrivals: TurnArrivals
    albums: AlbumCollector = field(init=False)
    _told: set[tuple[str, int]] = field(default_factory=set)
    _background: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.albums = AlbumCollector(self._album_done)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a reply outside any lane, keeping a reference so it is not collected."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, timeout: float) -> None:
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)

    # -- admission --------------------------------------------------------------------

    def admit(self, message: Message) -> bool:
        """Allow-lists first: a refused user costs no model call and no stored turn."""
        user_id = message.from_user.id if message.from_user else None
        private = is_private(message)
        key = conversation_key(message)
        if not self.access.chat_allowed(message.chat_id, private=private):
            self._tell_once("chat", message.chat_id, key, "I am not enabled in this chat.")
            return False
        if not self.access.user_allowed(user_id, message.chat_id, private=private):
            if private and user_id is not None:
                self._tell_once("user", user_id, key, "Sorry, this bot is private.")
            return False
        return True

    def _tell_once(self, kind: str, ident: int, key: Any, text: str) -> None:
        if (kind, ident) in self._told:
            return
        self._told.add((kind, ident))
        self.spawn(self.pipeline.say(key, text, kind == "chat"))

    def refuse(self, message: Message, problem: TurnRejected) -> None:
        self.spawn(
            self.pipeline.say(
                conversation_key(message),
                problem.user_message,
                is_group(message),
                reply_to=message.message_id,
            )
        )

    # -- turns ------------------------------------------------------------------------

    def take_message(self, message: Message, *, text_override: str | None = None) -> None:
        """Queue an addressed message as a turn (albums are gathered first)."""
        if message.media_group_id and text_override is None:
            self.albums.add(message)
            return
        self.submit([message], text_override=text_override)

    def _album_done(self, messages: list[Message]) -> None:
        self.submit(messages)

    def submit(self, messages: list[Message], *, text_override: str | None = None) -> None:
        first = messages[0]
        turn = turn_from_messages(
            messages,
            self.identity,
            max_input_chars=self.settings.max_input_chars,
            text_override=text_override,
        )
        sender = turn.sender_id
        exempt = sender is None or self.access.is_admin(sender)
        try:
            if sender is not None and not exempt:
                self.limiter.check(sender)
            self.lanes.check_room(turn.key, user_id=turn.sender_id)
        except TurnRejected as problem:
            self.refuse(first, problem)
            return
        accepted = self.arrivals.accept(turn, exempt=exempt)
        self.lanes.submit(
            turn.key, partial(self.pipeline.respond, turn, accepted), user_id=turn.sender_id
        )


def services_of(context: ContextTypes.DEFAULT_TYPE) -> BotServices:
    return context.application.bot_data[SERVICES_KEY]  # type: ignore[no-any-return]
