"""Collects the photos of an album, which Telegram delivers as separate updates, into one turn."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from telegram import Message

AlbumDone = Callable[[list[Message]], None]


class AlbumCollector:
    """Waits until no part of an album has arrived for `quiet` seconds, then hands it over.

    Telegram sends an album's parts back to back with one `media_group_id`; there is no
    "last part" marker, so a short quiet period is the only way to know it is complete.
    """

    def __init__(self, on_done: AlbumDone, *, quiet: float = 1.0) -> None:
        self._on_done = on_done
        self._quiet = quiet
        self._parts: dict[str, list[Message]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def add(self, message: Message) -> None:
        group = message.media_group_id
        assert group is not None
        self._parts.setdefault(group, []).append(message)
        if (timer := self._timers.get(group)) is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._timers[group] = loop.call_later(self._quiet, self._flush, group)

    def _flush(self, group: str) -> None:
        self._timers.pop(group, None)
        parts = sorted(self._parts.pop(group, []), key=lambda m: m.message_id)
        if parts:
            self._on_done(parts)

    def flush_all(self) -> None:
        """Hand over every album now (at shutdown), rather than dropping its parts."""
        for group in list(self._timers):
            self._timers.pop(group).cancel()
            self._flush(group)
