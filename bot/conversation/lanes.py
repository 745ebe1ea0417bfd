"""One lane per conversation: turns run one at a time in arrival order, lanes run in parallel."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

from bot import metrics
from bot.conversation.errors import QueueFull
from bot.shared import Sentence
from bot.shared.tasks import CANCEL_GRACE
from storage import ConversationKey

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
Guard = Callable[[ConversationKey, Job], Job]


class StopReason(Enum):
    """Why an answer's generation was cancelled: the note it ends with depends on it."""

    USER = "user"  # /stop, or the Stop button
    SHUTDOWN = "shutdown"  # SIGTERM: the bot is restarting


@dataclass(slots=True)
class _ConversationLane:
    """The queued jobs of one conversation, its worker, and the answer being generated."""

    jobs: deque[tuple[Job, int | None]] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    generation: asyncio.Task[None] | None = None
    stop_reason: StopReason | None = None


class ConversationLanes:
    """Serialises work per conversation so a slow answer never delays another chat.

    A lane's worker task exists only while the lane has work; idle conversations cost
    nothing. The part of a job that streams from the model registers itself as the lane's
    *generation* so `/stop` (and shutdown) can cancel exactly that, leaving the job to
    record the answer as stopped.
    """

    def __init__(self, *, max_queued_per_user: int = 1) -> None:
        self._lanes: dict[ConversationKey, _ConversationLane] = {}
        self._max_queued = max_queued_per_user
        self._closing = False
        self.guard: Guard | None = None
        """Wraps every submitted job (unless `guarded=False`): with a database shared by
        several processes, it holds the conversation's lease while the job runs."""

    @property
    def max_queued_per_user(self) -> int:
        """How many turns one person may have waiting in a conversation (0: no limit)."""
        return self._max_queued

    def check_room(self, key: ConversationKey, *, user_id: int | None = None) -> None:
        """Raise `QueueFull` when `user_id` already has the allowed number of turns waiting
        (or the bot is shutting down), before anything is stored for a new one."""
        if self._closing:
            raise QueueFull(Sentence("I am restarting; please send that again in a moment."))
        lane = self._lanes.get(key)
        if lane is None or user_id is None or self._max_queued <= 0:
            return
        if sum(1 for _, uid in lane.jobs if uid == user_id) >= self._max_queued:
            raise QueueFull()

    def submit(
        self, key: ConversationKey, job: Job, *, user_id: int | None = None, guarded: bool = True
    ) -> None:
        """Queue `job` behind the lane's current work. Synchronous, so order is arrival order.

        Raises `QueueFull` as `check_room` does.
        """
        self.check_room(key, user_id=user_id)
        if guarded and self.guard is not None:
            job = self.guard(key, job)
        lane = self._lanes.setdefault(key, _ConversationLane())
        lane.jobs.append((job, user_id))
        metrics.turns_waiting(+1)
        if lane.worker is None:
            lane.worker = asyncio.create_task(self._work(key, lane), name=f"lane-{key}")

    async def _work(self, key: ConversationKey, lane: _ConversationLane) -> None:
        try:
            while lane.jobs:
                job, _ = lane.jobs.popleft()
                metrics.turns_waiting(-1)
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("a turn in chat %s failed unexpectedly", key.chat_id)
        finally:
            lane.worker = None
            if self._lanes.get(key) is lane and not lane.jobs:
                del self._lanes[key]

    def busy(self, key: ConversationKey) -> bool:
        lane = self._lanes.get(key)
        return lane is not None and lane.worker is not None

    def active(self) -> int:
        """How many conversations have work under way here: this process's load."""
        return sum(1 for lane in self._lanes.values() if lane.worker is not None)

    @property
    def closing(self) -> bool:
        return self._closing

    def set_generation(self, key: ConversationKey, task: asyncio.Task[None] | None) -> None:
        """Register the task streaming the lane's answer; once the bot is closing, an answer
        that starts anyway (its job was past the queue) is stopped at once."""
        lane = self._lanes.get(key)
        if lane is not None:
            lane.generation = task
            lane.stop_reason = None
            if self._closing and task is not None:
                self.stop(key, StopReason.SHUTDOWN)

    def stop_reason(self, key: ConversationKey) -> StopReason | None:
        lane = self._lanes.get(key)
        return lane.stop_reason if lane else None

    def stop(self, key: ConversationKey, reason: StopReason = StopReason.USER) -> bool:
        """Cancel the answer being generated in this conversation, if any."""
        lane = self._lanes.get(key)
        if lane is None or lane.generation is None or lane.generation.done():
            return False
        lane.stop_reason = reason
        lane.generation.cancel()
        return True

    def stop_all(self, reason: StopReason) -> None:
        """Drop every queued job and stop every answer being generated."""
        for lane in self._lanes.values():
            metrics.turns_waiting(-len(lane.jobs))
            lane.jobs.clear()
        for key in list(self._lanes):
            self.stop(key, reason)

    def close(self) -> None:
        """Shutdown's first step: refuse new work and stop every answer being generated
        (each job goes on to record its answer as stopped)."""
        self._closing = True
        self.stop_all(StopReason.SHUTDOWN)

    async def drain(self, deadline: float) -> None:
        """Wait until `deadline` (the loop's clock) for the jobs to record their answers;
        cancel those still running then."""
        workers = [lane.worker for lane in self._lanes.values() if lane.worker is not None]
        if not workers:
            return
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        _, pending = await asyncio.wait(workers, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%d answers did not finish before the shutdown deadline", len(pending))
            await asyncio.wait(pending, timeout=CANCEL_GRACE)

    async def shutdown(self, timeout: float) -> None:
        """`close`, then `drain` for at most `timeout` seconds."""
        self.close()
        await self.drain(asyncio.get_running_loop().time() + timeout)
