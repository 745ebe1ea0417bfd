"""Messages the gatherer holds back, kept in the database until their turn is stored.

An album's parts and media sent without a caption wait a few seconds in memory for the rest
of their turn (`gathering`), but Telegram counts an update delivered once the bot fetched
it: a crash in those seconds would lose the photos for good. So each held message is written
to the store as Telegram sent it, and forgotten once its turn is stored (or refused). The
next start hands what is left over as the turns it was waiting to become; a turn stored just
before the crash is found stored (by its message id) and not answered twice.

Writes and deletes run in the conversation's order of arrivals (`TurnRecorder.in_order`), so
a message is never forgotten before it was written, and never written after its turn.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import partial

from telegram import Bot, Message

from bot.conversation.recorder import TurnRecorder
from bot.telegram.triggers import conversation_key
from storage import Store

log = logging.getLogger(__name__)

HELD_GRACE = 60.0
"""Seconds beyond `PHI4BOT_MEDIA_WAIT` after which no live process still holds a message
(an album's parts come within a second of each other): with a shared database, messages
held longer ago are a gone process's."""


class HeldJournal:
    """What `TurnGatherer` holds, mirrored in the store (the gatherer's `Keeper`)."""

    def __init__(self, store: Store, recorder: TurnRecorder) -> None:
        self._store = store
        self._recorder = recorder

    def hold(self, message: Message) -> None:
        """Keep `message`, which the gatherer holds back from now on (kept once: holding it
        again, as a hand-over after a crash does, changes nothing)."""
        chat_id, message_id = message.chat_id, message.message_id
        payload = json.dumps(message.to_dict(), separators=(",", ":"))
        self._recorder.in_order(
            conversation_key(message),
            partial(self._write, chat_id, message_id, payload),
            name=f"hold-message-{message_id}-{chat_id}",
        )

    def released(self, messages: Sequence[Message]) -> None:
        """The held `messages` were just handed over as (part of) one turn: forget them
        after it, in the conversation's order, so after the turn is stored."""
        chat_id = messages[0].chat_id
        self._recorder.in_order(
            conversation_key(messages[0]),
            partial(self._forget, chat_id, [m.message_id for m in messages]),
            name=f"release-held-{messages[0].message_id}-{chat_id}",
        )

    async def left_over(self, bot: Bot, held_before: float) -> list[Message]:
        """The messages a process that is gone held since before `held_before` (epoch
        seconds), oldest first, read back as Telegram sent them."""
        found = await self._store.held_messages(held_before)
        messages: list[Message] = []
        for held in found:
            message = Message.de_json(json.loads(held.payload), bot)
            if message is None:  # not a message any more: nothing to hand over
                await self._store.release_held(held.chat_id, [held.message_id])
                continue
            messages.append(message)
        return messages

    async def _write(self, chat_id: int, message_id: int, payload: str) -> None:
        try:
            await self._store.hold_message(chat_id, message_id, payload)
        except Exception as exc:  # held in memory still: only a crash now would lose it
            log.warning("keeping held message %s of chat %s failed: %s", message_id, chat_id, exc)

    async def _forget(self, chat_id: int, message_ids: list[int]) -> None:
        try:
            await self._store.release_held(chat_id, message_ids)
        except Exception as exc:  # the turn is stored: a next start finds it so, once
            log.warning("forgetting held messages of chat %s failed: %s", chat_id, exc)
