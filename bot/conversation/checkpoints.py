"""Saves every streaming answer's partial text on one shared tick, all of them in one store call.

A crash must leave each answer's text so far and the messages showing it, so that the next
process can tell the chat what happened. With a timer per answer, a thousand answers
streaming at once made hundreds of single-row writes a second, each queued ahead of new
turns; here one tick gathers whatever is due and writes it with one `update_answers`.

The rules per answer are those of the timer they replace: a new message is saved at the next
tick (so even an answer cut off in its first second is recorded with the message that shows
it); text alone that grew is saved at most every `TEXT_EVERY` seconds; an answer that did not
change is not written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from storage import AnswerCheckpoint, Store

log = logging.getLogger(__name__)

TICK = 0.2
TEXT_EVERY = 2.0


class ShownAnswer(Protocol):
    """What the writer reads of an answer being written (an `AnswerView` is one)."""

    @property
    def text(self) -> str: ...

    @property
    def message_ids(self) -> list[int]: ...


@dataclass(slots=True)
class _Watched:
    """An answer being written, and what of it the database holds."""

    view: ShownAnswer
    saved_at: float
    saved_ids: tuple[int, ...] = ()
    saved_length: int = 0


class CheckpointWriter:
    """`start()` with the services, `watch` each answer once it is stored, `forget` it before
    its end is recorded, `await close()` once the answers are stopped.

    Forgetting an answer takes it out of every later batch. A batch already on its way may
    still hold it and land after the answer's end is recorded: `update_answers` leaves
    answers no longer streaming untouched, so it cannot undo that end.
    """

    def __init__(
        self,
        store: Store,
        *,
        tick: float = TICK,
        text_every: float = TEXT_EVERY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._tick = tick
        self._text_every = text_every
        self._clock = clock
        self._sleep = sleep
        self._watched: dict[int, _Watched] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        """Begin ticking, inside the running loop; starting twice is harmless."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="checkpoint-writer"
            )

    async def close(self) -> None:
        """Stop ticking, then save once more whatever changed, so an answer still open leaves
        its latest text; closing twice is harmless."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self.flush()

    async def flush(self) -> None:
        """Save at once every answer whose text or messages changed since its last save: at
        shutdown, before the answers' last edits, so a missed deadline loses no text."""
        await self.write(self._changed(since=0.0))

    def watch(self, answer_id: int, view: ShownAnswer) -> None:
        """Save the stored answer `answer_id` as `view` shows it, from the next tick on."""
        self._watched[answer_id] = _Watched(view, saved_at=self._clock())

    def forget(self, answer_id: int) -> None:
        """No checkpoint of the answer is taken from now on (its end is about to be stored)."""
        self._watched.pop(answer_id, None)

    def due(self) -> list[AnswerCheckpoint]:
        """The answers to save now: a new message at once, grown text every `text_every`."""
        return self._changed(since=self._text_every)

    async def write(self, checkpoints: list[AnswerCheckpoint]) -> None:
        """Save `checkpoints` with one store call; a failure is logged (once until writes work
        again) and the same answers are due again at the next tick."""
        if not checkpoints:
            return
        try:
            await self._store.update_answers(checkpoints)
        except Exception:
            if not self._failing:
                log.warning("saving %d partial answers failed", len(checkpoints), exc_info=True)
            self._failing = True
            return
        if self._failing:
            log.info("partial answers are saved again")
        self._failing = False
        now = self._clock()
        for checkpoint in checkpoints:
            watched = self._watched.get(checkpoint.answer_id)
            if watched is not None:
                watched.saved_ids = checkpoint.message_ids
                watched.saved_length = len(checkpoint.text)
                watched.saved_at = now

    def _changed(self, *, since: float) -> list[AnswerCheckpoint]:
        """Answers showing a message not saved yet, or text that grew if saved at least
        `since` seconds ago."""
        now = self._clock()
        found = []
        for answer_id, watched in self._watched.items():
            ids = tuple(watched.view.message_ids)
            if ids == watched.saved_ids and now - watched.saved_at < since:
                continue  # the text is not even read: joining it costs, a thousand times a tick
            text = watched.view.text
            if ids != watched.saved_ids or len(text) != watched.saved_length:
                found.append(AnswerCheckpoint(answer_id, text, ids))
        return found

    async def _run(self) -> None:
        while True:
            await self._sleep(self._tick)
            await self.write(self.due())
