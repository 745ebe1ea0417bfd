"""The one owner of background work: named tasks, each failure logged once, one drain deadline.

Work that runs beside the answers (a notice sent outside a lane, buttons removed from an
older answer, a probe of the backend) is spawned here instead of into a set each module
keeps: the task is held until it ends, a failure is logged once with the task's name (no
"exception was never retrieved" later), and shutdown waits for all of it against one
deadline instead of one timeout per module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

CANCEL_GRACE = 0.5
"""Seconds given to tasks cancelled at the deadline to unwind (close a socket, say)."""


class TaskSupervisor:
    """Spawns named background tasks, logs their failures, and drains them at shutdown.

    A task spawned with `cancel_at_shutdown` (a probe, a loop that never ends by itself) is
    cancelled as soon as the drain begins; every other task is waited for until the
    deadline, and only then cancelled.
    """

    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[Any], bool] = {}
        """Each task under way, and whether shutdown cancels it rather than waits for it."""

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(
        self, work: Coroutine[Any, Any, T], *, name: str, cancel_at_shutdown: bool = False
    ) -> asyncio.Task[T]:
        """Run `work` in the background as the task `name`; its failure is logged once."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks[task] = cancel_at_shutdown
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)
        if task.cancelled():
            return
        problem = task.exception()  # retrieved here, so asyncio never reports it again
        if problem is not None:
            log.error("background task %s failed", task.get_name(), exc_info=problem)

    async def drain(self, deadline: float) -> int:
        """Wait for the background work until `deadline` (the loop's clock), including work
        spawned meanwhile; cancel what is left then. Returns how many tasks were cancelled
        at the deadline (those marked `cancel_at_shutdown` are not counted)."""
        loop = asyncio.get_running_loop()
        for task, cancel in list(self._tasks.items()):
            if cancel:
                task.cancel()
        while pending := self._pending():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(pending, timeout=remaining)
        late = [task for task in self._pending() if not self._tasks.get(task, False)]
        for task in self._pending():
            task.cancel()
        if late:
            log.warning(
                "%d background tasks did not finish before the shutdown deadline: %s",
                len(late),
                ", ".join(sorted(task.get_name() for task in late)[:10]),
            )
        if pending := self._pending():
            await asyncio.wait(pending, timeout=CANCEL_GRACE)
        return len(late)

    def _pending(self) -> list[asyncio.Task[Any]]:
        return [task for task in self._tasks if not task.done()]
