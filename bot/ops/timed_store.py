"""A `Store` proxy that times every database operation, leaving `storage/` untouched."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from bot import metrics
from storage import Store


class TimedStore:
    """Forwards everything to the store it wraps; coroutine methods are timed by name.

    Each method is wrapped on first use and kept, so later calls cost one extra await.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        timed = _timed(name, attribute)
        setattr(self, name, timed)
        return timed


def _timed(name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            metrics.observe_database(name, time.perf_counter() - started)

    return timed


def timed_store(store: Store) -> Store:
    """`store`, with its operations' latency recorded in `phi4bot_database_operation_seconds`."""
    return cast(Store, TimedStore(store))
