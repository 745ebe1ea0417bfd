"""Counters a test or benchmark reads after a run: calls per method, 429s, per-chat timing."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple


class ChatRequest(NamedTuple):
    """One flood-counted call to a chat: when (fake's clock), which method, HTTP status."""

    time: float
    method: str
    status: int


@dataclass
class Stats:
    """Everything is counted, refused calls included, so rates and penalties can be checked.

    `requests` is keyed by the method name as Telegram spells it (`sendMessage`); a call that
    met an injected fault is counted there and in `faults`.
    """

    requests: Counter[str] = field(default_factory=Counter)
    flood_429: int = 0
    flood_429_by_chat: Counter[int] = field(default_factory=Counter)
    faults: int = 0
    errors: Counter[tuple[str, int]] = field(default_factory=Counter)
    """Refused calls by (method, status): `("getUpdates", 409)` counts Conflicts."""
    chat_requests: defaultdict[int, list[ChatRequest]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def rate(self, chat_id: int, start: float, end: float) -> float:
        """Flood-counted calls per second to `chat_id` between two clock readings."""
        if end <= start:
            return 0.0
        calls = [r for r in self.chat_requests.get(chat_id, []) if start <= r.time < end]
        return len(calls) / (end - start)
