"""Which running code holds a granted slot of the budget, so the request it sends goes at once.

A slot is granted to the code that waited for it (`RateBudget.slot`, or the streamer's
acquire-then-render) and marked in a context variable for the task running that code. The
rate limiter every Bot API request passes through spends the mark (`claim`): one slot lets
exactly one request through, and a request nobody paid for waits for a slot of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class _HeldSlot:
    """A granted slot the running code holds, for one request to `chat_id`."""

    budget: object
    chat_id: int | None
    spent: bool = False


_HELD: ContextVar[_HeldSlot | None] = ContextVar("phi4bot_held_slot", default=None)


def held_slot_spent(budget: object) -> bool:
    """Whether the running code sends a request in a slot of `budget` (what a request
    reaching the network must be doing)."""
    held = _HELD.get()
    return held is not None and held.budget is budget and held.spent


@contextmanager
def holding(budget: object, chat_id: int | None) -> Iterator[None]:
    """Mark the block as holding a slot of `budget` for one request to `chat_id`."""
    token = _HELD.set(_HeldSlot(budget, chat_id))
    try:
        yield
    finally:
        _HELD.reset(token)


def claim(budget: object, chat_id: int | None) -> bool:
    """Whether the running code holds an unspent slot of `budget` for a request to
    `chat_id`; asking spends it. A request without a chat (`None`) may spend a chat's
    slot, which was charged to the bot as well."""
    held = _HELD.get()
    if held is None or held.budget is not budget or held.spent:
        return False
    if chat_id is not None and held.chat_id != chat_id:
        return False
    held.spent = True
    return True


def claim_held(budget: object) -> tuple[bool, int | None]:
    """Like `claim`, whatever chat the slot held was granted for: whether one was spent,
    and that chat."""
    held = _HELD.get()
    if held is None or held.budget is not budget or held.spent:
        return False, None
    held.spent = True
    return True, held.chat_id
