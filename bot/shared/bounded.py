"""Memory that cannot grow with the number of users: a bounded map, oldest forgotten first.

A long-running bot meets new chats and users every day; a dict keyed by them that is never
pruned grows for as long as the process lives. `BoundedDict` keeps at most `capacity`
entries, forgetting the one written longest ago (and, with `ttl`, any entry not written for
that many seconds), so what such a map costs is fixed however many people come. Entries are
kept in the order they were last written, so forgetting costs only what is forgotten.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedDict(Generic[K, V]):
    """A mapping of at most `capacity` entries, the least recently written out first; with
    `ttl`, an entry not written for `ttl` seconds is gone as well."""

    def __init__(
        self,
        capacity: int,
        *,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        self._expire()
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        self._expire()
        return iter(list(self._entries))

    def get(self, key: K, default: V | None = None) -> V | None:
        self._expire()
        entry = self._entries.get(key)
        return default if entry is None else entry[1]

    def __getitem__(self, key: K) -> V:
        self._expire()
        return self._entries[key][1]

    def __setitem__(self, key: K, value: V) -> None:
        self._entries[key] = (self._clock(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        self._expire()

    def pop(self, key: K, default: V | None = None) -> V | None:
        entry = self._entries.pop(key, None)
        return default if entry is None else entry[1]

    def _expire(self) -> None:
        if self.ttl is None:
            return
        horizon = self._clock() - self.ttl
        while self._entries:
            key, (written, _) = next(iter(self._entries.items()))
            if written > horizon:
                return
            del self._entries[key]
