"""Answering in conversations shared with other processes: claim, answer what waits, release.

With several processes on one database, an arriving turn is stored and announced (`wake`);
each process hearing it tries to claim the conversation, the least busy first. The holder
answers the conversation's waiting turns oldest first (whichever process stored them), so
answers stay one at a time and in order of arrival across processes; then it releases the
lease and looks once more, for a turn stored while it held it. A sweep every second picks up
conversations nobody holds, such as those of a process that died, and sends the one
"interrupted" notice for each answer such a process left cut off.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from functools import partial

from bot.conversation.errors import QueueFull
from bot.conversation.guest_recovery import mark_guest_interrupted
from bot.conversation.lanes import ConversationLanes, Job, StopReason
from bot.conversation.notices import by_conversation, notice_target, restart_notice
from bot.conversation.pipeline import TurnPipeline
from bot.conversation.recorder import AcceptedTurn
from bot.conversation.turns import IncomingTurn, ReplyTarget, guest_caller
from storage import ConversationKey, Coordination, store_unavailable

log = logging.getLogger(__name__)

LOAD_DELAY = 0.02
"""Seconds a process waits before claiming, per conversation it is already answering."""
MAX_DELAY = 0.5
SWEEP_EVERY = 1.0
SWEEP_WITHIN = 3600.0
"""After the first sweep (which looks as far back as start-up recovery), sweeps look at the
last hour: a conversation whose holder is alive finds its own older turns."""
CLAIM_RETRY = 0.2
CLAIM_PATIENCE = 60.0
REMEMBERED_TARGETS = 10_000


class SharedAnswering:
    """Claims conversations from the shared database and answers their waiting turns."""

    def __init__(
        self,
        *,
        coordination: Coordination,
        lanes: ConversationLanes,
        pipeline: TurnPipeline,
        tell: Callable[[ReplyTarget, str], None],
    ) -> None:
        self.coordination = coordination
        self.lanes = lanes
        self.pipeline = pipeline
        self._tell = tell
        self._targets: OrderedDict[int, ReplyTarget] = OrderedDict()
        self._scheduled: set[ConversationKey] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._swept = False
        coordination.on_wake(self.schedule)
        coordination.on_stop(self._stop_here)
        lanes.guard = self.exclusive

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="shared-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.wait([self._sweeper])

    def _stop_here(self, key: ConversationKey) -> None:
        """/stop reached another process: stop the answer if it is being written here."""
        self.lanes.stop(key)

    def lost(self) -> None:
        """The leases are gone with the coordination connection: another process may take
        these conversations over at any moment, so stop answering in them now."""
        log.error("stopping every answer: this process no longer holds its conversations")
        self.lanes.stop_all(StopReason.SHUTDOWN)
        self._scheduled.clear()  # their queued drains are gone: let wake-ups schedule anew

    # -- arrivals -----------------------------------------------------------------------

    async def arrived(
        self, turn: IncomingTurn, accepted: asyncio.Task[AcceptedTurn | None]
    ) -> None:
        """Once the turn is stored, announce it; a turn to refuse is refused here at once."""
        stored = await accepted
        if stored is None:
            return
        if stored.problem is not None:
            await self.pipeline.respond(turn, accepted)  # done already: gives `stored` again
            return
        self._targets[stored.user_turn_id] = turn.target.replying_to(turn.message_id)
        while len(self._targets) > REMEMBERED_TARGETS:
            self._targets.popitem(last=False)
        try:
            await self.coordination.wake(turn.key)
        except Exception as exc:  # the turn is stored: the next sweep finds it
            log.warning("announcing a turn in chat %s failed: %s", turn.key.chat_id, exc)
            self.schedule(turn.key)

    def schedule(self, key: ConversationKey) -> None:
        """Try to claim the conversation soon: sooner the fewer conversations this process
        is answering already, so that the least busy process wins."""
        if key in self._scheduled or self.lanes.closing:
            return
        self._scheduled.add(key)
        delay = min(MAX_DELAY, LOAD_DELAY * self.lanes.active())
        asyncio.get_running_loop().call_later(delay, self._submit, key)

    def _submit(self, key: ConversationKey) -> None:
        try:
            self.lanes.submit(key, partial(self._drain, key), guarded=False)
        except QueueFull:
            self._scheduled.discard(key)

    # -- answering under the lease ------------------------------------------------------

    async def _drain(self, key: ConversationKey) -> None:
        """Claim the conversation and answer its waiting turns oldest first; after the
        release, look once more for a turn stored while the lease was held."""
        self._scheduled.discard(key)
        tried: set[int] = set()
        while await self.coordination.claim(key):
            try:
                while (waiting := await self.coordination.next_waiting(key)) is not None:
                    if not self.coordination.holds(key):
                        return  # the lease was lost: another process may answer now
                    if waiting.user_turn_id in tried:
                        break  # its answer failed before it was recorded; not again
                    tried.add(waiting.user_turn_id)
                    target = self._targets.pop(waiting.user_turn_id, None)
                    if target is None and guest_caller(key) is not None:
                        break  # a summon is answered by the process it reached, once known
                    if target is None:
                        target = ReplyTarget.for_stored(key, waiting.user_message_id)
                    try:
                        await self.pipeline.answer(
                            target, waiting.conversation_id, waiting.user_turn_id
                        )
                    except Exception:
                        log.exception("a turn in chat %s failed unexpectedly", key.chat_id)
            finally:
                await self.coordination.release(key)
            again = await self.coordination.next_waiting(key)
            if again is None or again.user_turn_id in tried:
                return

    def exclusive(self, key: ConversationKey, job: Job) -> Job:
        """`job` (a command such as /retry) run while holding the conversation's lease,
        waiting for it if another process holds it; then whatever waits is answered."""

        async def claimed() -> None:
            waited = 0.0
            while not await self.coordination.claim(key):
                if waited >= CLAIM_PATIENCE or self.lanes.closing:
                    log.warning("chat %s stayed claimed elsewhere; a command is dropped", key)
                    return
                await asyncio.sleep(CLAIM_RETRY)
                waited += CLAIM_RETRY
            try:
                await job()
            finally:
                await self.coordination.release(key)
            if await self.coordination.next_waiting(key) is not None:
                self.schedule(key)

        return claimed

    # -- the sweep ----------------------------------------------------------------------

    async def sweep(self) -> None:
        """Notices for answers cut off by a process that is gone; then a claim attempt for
        every conversation with waiting turns that nobody holds."""
        cut = await self.coordination.orphaned_answers()
        for key, pending in by_conversation(cut).items():
            if guest_caller(key) is not None:
                await mark_guest_interrupted(self.pipeline, key, pending)
                continue
            self._tell(ReplyTarget.for_stored(key, notice_target(pending)), restart_notice(pending))
        within = SWEEP_WITHIN if self._swept else None
        for key in await self.coordination.waiting_conversations(within):
            if not self.lanes.busy(key):
                self.schedule(key)
        self._swept = True

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if (outage := store_unavailable(exc)) is None:
                    log.exception("looking for waiting conversations failed")
                else:  # one line a second, not a traceback: the store's retry tells the rest
                    log.warning("looking for waiting conversations failed: %s", outage)
            await asyncio.sleep(SWEEP_EVERY)
