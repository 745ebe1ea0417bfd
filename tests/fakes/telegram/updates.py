"""Pending updates and `getUpdates` long polling, with Telegram's confirm-by-offset rule.

An update stays pending until a later `getUpdates` passes an `offset` greater than its
`update_id`, so a bot killed before confirming sees the same updates again after a restart.
Only one long poll may wait at a time: a new `getUpdates` terminates the one already
waiting with 409 Conflict, which is what two running copies of a bot see on Telegram.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING, Any

from .errors import ApiError

if TYPE_CHECKING:
    from .params import Params
    from .state import World

# Delivered unless `allowed_updates` names them (Bot API: "all update types except ...").
OPT_IN_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
MAX_LIMIT = 100
CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


class UpdateQueue:
    """Updates in `update_id` order; confirming drops from the left, so each call is O(limit)."""

    def __init__(self) -> None:
        self.pending: deque[dict[str, Any]] = deque()
        self.next_id = 1
        self.allowed: frozenset[str] | None = None
        self.poller: object | None = None

    def wanted(self, kind: str) -> bool:
        if self.allowed is None:
            return kind not in OPT_IN_TYPES
        return kind in self.allowed

    def push(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue one update; types the bot did not ask for are dropped, as Telegram does."""
        update = {"update_id": self.next_id, kind: payload}
        self.next_id += 1
        if self.wanted(kind):
            self.pending.append(update)
        return update

    def confirm(self, offset: int) -> None:
        """Forget updates below `offset`; a negative offset keeps only the last -offset."""
        if offset < 0:
            while len(self.pending) > -offset:
                self.pending.popleft()
            return
        while self.pending and self.pending[0]["update_id"] < offset:
            self.pending.popleft()

    def take(self, limit: int) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        for update in self.pending:
            if len(batch) >= limit:
                break
            kind = next(key for key in update if key != "update_id")
            if self.wanted(kind):
                batch.append(update)
        return batch

    def clear(self) -> None:
        self.pending.clear()


async def get_updates(world: World, params: Params) -> list[dict[str, Any]]:
    """Answer `getUpdates`: confirm, then return pending updates or wait up to `timeout`."""
    queue = world.updates
    if world.webhook.get("url"):
        raise ApiError(409, WEBHOOK_ACTIVE)
    allowed = params.structured("allowed_updates")
    if isinstance(allowed, list):
        queue.allowed = frozenset(allowed) or None
    offset = params.optional_integer("offset")
    if offset:
        queue.confirm(offset)
    limit = min(max(params.optional_integer("limit") or MAX_LIMIT, 1), MAX_LIMIT)
    timeout = max(params.optional_number("timeout") or 0.0, 0.0)
    me = object()
    queue.poller = me
    world.notify()  # wakes a long poll already waiting, which then answers 409
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            changed = world.changed
            batch = queue.take(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0:
                return batch
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
            if queue.poller is not me:
                raise ApiError(409, CONFLICT)
    finally:
        if queue.poller is me:
            queue.poller = None
