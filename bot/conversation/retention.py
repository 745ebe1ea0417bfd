"""Retention in the background: old conversations and media forgotten in small batches, as
`PHI4BOT_RETENTION_DAYS` and `PHI4BOT_MEDIA_RETENTION_DAYS` ask."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.shared.tasks import TaskSupervisor
from storage import Store, store_unavailable

log = logging.getLogger(__name__)

DAY = 86400.0
FIRST_SWEEP_AFTER = 60.0
"""Seconds after start-up before the first sweep: start-up's own work goes first."""
SWEEP_EVERY = 3600.0
BATCH = 100
PAUSE = 0.5
"""Seconds between two batches, so messages arriving meanwhile get the database."""


class RetentionSweeper:
    """Deletes whole conversations untouched for `conversation_days` and drops the bytes of
    media older than `media_days` (None: that kind is kept), every `every` seconds."""

    def __init__(
        self,
        store: Store,
        *,
        conversation_days: float | None,
        media_days: float | None,
        batch: int = BATCH,
        pause: float = PAUSE,
        first_after: float = FIRST_SWEEP_AFTER,
        every: float = SWEEP_EVERY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.conversation_days = conversation_days
        self.media_days = media_days
        self.batch = batch
        self.pause = pause
        self.first_after = first_after
        self.every = every
        self.clock = clock

    @property
    def wanted(self) -> bool:
        return self.conversation_days is not None or self.media_days is not None

    def start(self, tasks: TaskSupervisor) -> asyncio.Task[None] | None:
        """Sweep in the background, when retention is asked for at all; shutdown cancels
        it (a batch cut short is a transaction rolled back: nothing half deleted)."""
        if not self.wanted:
            return None
        return tasks.spawn(self._run(), name="retention", cancel_at_shutdown=True)

    async def sweep(self) -> tuple[int, int]:
        """Batches until none is full: how many conversations were deleted, and how many
        files lost their bytes."""
        now = self.clock()
        conversations_before = _before(now, self.conversation_days)
        media_before = _before(now, self.media_days)
        conversations = media = 0
        while True:
            batch = await self.store.forget(
                conversations_before=conversations_before,
                media_before=media_before,
                batch=self.batch,
            )
            conversations += batch.conversations
            media += batch.media
            if not batch.more:
                break
            await asyncio.sleep(self.pause)
        if conversations or media:
            log.info(
                "retention: deleted %d conversations untouched for %s days, dropped the bytes "
                "of %d files older than %s days",
                conversations,
                _days(self.conversation_days),
                media,
                _days(self.media_days),
            )
        return conversations, media

    async def _run(self) -> None:
        await asyncio.sleep(self.first_after)
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next sweep tries again; answering goes on
                log.warning(
                    "retention: a sweep failed, trying again in %.0f s: %s",
                    self.every,
                    exc,
                    exc_info=store_unavailable(exc) is None,
                )
            await asyncio.sleep(self.every)


def _before(now: float, days: float | None) -> float | None:
    return None if days is None else now - days * DAY


def _days(days: float | None) -> str:
    return "-" if days is None else f"{days:g}"
