"""Records each addressed message the moment it arrives, so a queued turn survives a crash."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from bot.conversation.errors import (
    DailyQuotaReached,
    FileTooLarge,
    MediaUnavailable,
    QueueFull,
    StoreStillUnavailable,
)
from bot.conversation.ports import MediaDownloader
from bot.conversation.store_retry import StoreRetry
from bot.conversation.turns import FetchedMedia, IncomingTurn
from bot.phi4 import MediaNotSupported
from bot.shared import MediaKind, Sentence, UserFacingError
from bot.shared.tasks import TaskSupervisor
from storage import (
    AttachmentTooLarge,
    ConversationKey,
    NewAttachment,
    RecordedTurn,
    Store,
    TooManyWaiting,
    megabytes,
)

log = logging.getLogger(__name__)

DAY = 24 * 60 * 60.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AcceptedTurn:
    """A stored user turn, and the reason to refuse it instead of answering, if any."""

    conversation_id: int
    user_turn_id: int
    problem: UserFacingError | None = None


class TurnRecorder:
    """Downloads and stores arriving turns at once, while their answers wait in the lanes.

    Storing happens in arrival order per conversation (downloads of different messages
    run side by side, but each store waits for the one before it), so history keeps the
    order people wrote in. Operations that change which conversation is current (/new)
    take the same queue, so every message lands in the conversation it was written to.

    While the database is locked or out of reach, storing is tried again (`StoreRetry`) and
    the conversation's later arrivals wait behind it, in order; past the retry limit the
    sender is asked to send the message again. A retry after a lost answer from the server
    may find the turn stored already (the store's idempotency by message id): it is then not
    answered from here, and stays a waiting turn that recovery (or, with a shared database,
    the next sweep) answers once.

    The storing runs as named tasks of the process's `TaskSupervisor`, which logs a failure
    once and gives the arrivals still waiting for the database up at the shutdown deadline
    with the rest of the background work; this class keeps only each conversation's last
    arrival, which the next one waits for, and how many were given up (`report_given_up`).

    With `waiting_cap` (processes sharing the database), the store refuses a sender who has
    that many turns waiting in the conversation already, counted in the database, since
    the lanes of this process see only what it answers itself; the sender reads
    `QueueFull`, as from a lane.
    """

    def __init__(
        self,
        store: Store,
        media: MediaDownloader,
        accepts: frozenset[MediaKind],
        *,
        daily_quota: int = 0,
        refuse: Callable[[IncomingTurn, UserFacingError], Awaitable[object]],
        tasks: TaskSupervisor,
        retry: StoreRetry | None = None,
        waiting_cap: int | None = None,
    ) -> None:
        self._store = store
        self._media = media
        self._accepts = accepts
        self._daily_quota = daily_quota
        self._refuse = refuse
        self._retry = retry if retry is not None else StoreRetry(60.0)
        self._waiting_cap = waiting_cap
        self._tasks = tasks
        self._tails: dict[ConversationKey, asyncio.Task[Any]] = {}
        self._given_up = 0

    def accept(self, turn: IncomingTurn, *, exempt: bool) -> asyncio.Task[AcceptedTurn | None]:
        """Start storing `turn` now; the task gives None when it is not to be answered."""
        step = partial(self._accept, turn, exempt=exempt)
        return self.in_order(turn.key, step, name=f"store-message-{turn.message_id}-{turn.key}")

    def in_order(
        self, key: ConversationKey, step: Callable[[], Awaitable[T]], *, name: str
    ) -> asyncio.Task[T]:
        """Run `step` as the background task `name` once every earlier arrival of the
        conversation has been stored."""
        previous = self._tails.get(key)

        async def run() -> T:
            if previous is not None:
                await asyncio.wait([previous])
            return await step()

        task = self._tasks.spawn(run(), name=name)
        self._tails[key] = task
        task.add_done_callback(partial(self._forget, key))
        return task

    def _forget(self, key: ConversationKey, task: asyncio.Task[Any]) -> None:
        if self._tails.get(key) is task:
            del self._tails[key]
        if task.cancelled():
            self._given_up += 1

    def report_given_up(self) -> None:
        """Once the background work is drained at shutdown: say in the log how many
        arrivals were given up before they reached the database."""
        if self._given_up:
            log.error("%d arriving messages were not stored before shutdown", self._given_up)
            self._given_up = 0

    async def _accept(self, turn: IncomingTurn, *, exempt: bool) -> AcceptedTurn | None:
        what = f"storing message {turn.message_id} in chat {turn.key.chat_id}"
        try:
            return await self._store_turn(turn, exempt=exempt, what=what)
        except TooManyWaiting:
            await self._refuse(turn, QueueFull())
            return None
        except StoreStillUnavailable as failure:
            self._retry.refuse_turn(what, failure)
            await self._refuse(turn, failure)
            return None

    async def _store_turn(
        self, turn: IncomingTurn, *, exempt: bool, what: str
    ) -> AcceptedTurn | None:
        if not exempt and await self._retry.run(what, partial(self._over_quota, turn)):
            await self._refuse(turn, DailyQuotaReached())
            return None
        problem, fetched = await self._fetch(turn)
        if turn.fresh:
            await self._retry.run(what, partial(self._store.new_conversation, turn.key))
        attachments = list(fetched.attachments)
        text = "\n\n".join(t for t in (fetched.text, turn.text) if t)
        if problem is not None and turn.media:
            text = f"{text} [{turn.media[0].filename}: not read]".strip()
        record = partial(
            self._store.record_user_turn,
            turn.key,
            chat_id=turn.key.chat_id,
            message_id=turn.message_id,
            sender_id=turn.sender_id,
            sender_name=turn.sender_name,
            max_waiting=self._waiting_cap,
        )

        async def store_turn(text: str, attachments: list[NewAttachment]) -> RecordedTurn | None:
            store = partial(record, text=text, attachments=attachments)
            return await self._retry.run(what, store)

        try:
            recorded = await store_turn(text, attachments)
        except AttachmentTooLarge as exc:
            problem = FileTooLarge(
                Sentence(
                    "That file is too large: I can keep attachments of up to {size}.",
                    size=megabytes(exc.limit),
                )
            )
            recorded = await store_turn(f"{text} [{turn.media[0].filename}: not read]", [])
        if recorded is None:
            log.info("message %s in chat %s was handled before", turn.message_id, turn.key.chat_id)
            return None
        return AcceptedTurn(recorded.conversation_id, recorded.user_turn_id, problem)

    async def revised_text(self, turn: IncomingTurn) -> str:
        """The text an edited message's stored turn takes: its documents read again (their
        text is part of the turn, before the caption) and the new caption."""
        documents = [ref for ref in turn.media if ref.kind is None]
        if not documents:
            return turn.text
        try:
            fetched = await self._media.fetch(documents)
        except Exception as exc:
            log.info("documents of edited message %s not read again: %s", turn.message_id, exc)
            return turn.text
        return "\n\n".join(t for t in (fetched.text, turn.text) if t)

    async def _over_quota(self, turn: IncomingTurn) -> bool:
        if not self._daily_quota or turn.sender_id is None:
            return False
        since = time.time() - DAY
        used = await self._store.count_user_turns_since(turn.sender_id, since)
        return used >= self._daily_quota

    async def _fetch(self, turn: IncomingTurn) -> tuple[UserFacingError | None, FetchedMedia]:
        """The turn's media, ready for the model, or the reason it cannot be read."""
        if turn.rejection is not None:
            return turn.rejection, FetchedMedia()
        every = turn.context_media + turn.media
        refused = frozenset(ref.kind for ref in every if ref.kind is not None) - self._accepts
        if refused:
            return MediaNotSupported.refusing(refused, self._accepts), FetchedMedia()
        context = await self._fetch_context(turn)
        if not turn.media:
            return None, context
        try:
            return None, context + await self._media.fetch(list(turn.media))
        except UserFacingError as exc:
            return exc, FetchedMedia()
        except Exception:
            log.exception("media of message %s could not be prepared", turn.message_id)
            return MediaUnavailable(), FetchedMedia()

    async def _fetch_context(self, turn: IncomingTurn) -> FetchedMedia:
        """The replied-to message's media if it can still be had; the question goes on
        without it otherwise."""
        if not turn.context_media:
            return FetchedMedia()
        try:
            return await self._media.fetch(list(turn.context_media))
        except Exception as exc:
            log.info("media replied to by message %s left out: %s", turn.message_id, exc)
            return FetchedMedia()
