"""A `Backend` wrapper that counts requests by outcome and times the first chunk; `instrument`
puts it around every server of a fallback chain or replica pool."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from functools import partial

from bot import metrics
from bot.phi4.backend import Backend, QueueListener
from bot.phi4.chain import FallbackChain
from bot.phi4.conversation import Conversation
from bot.phi4.errors import Phi4Error
from bot.phi4.replicas import Replica, ReplicaPool
from bot.shared import MediaKind


def instrument(backend: Backend) -> Backend:
    """`backend` with each server it asks counted: a chain's members, a pool's replicas.

    A pool's replicas are labelled with their URL (credentials and query removed), and
    whether each is in service is read when metrics are scraped.
    """
    if isinstance(backend, FallbackChain):
        backend.backends = tuple(instrument(member) for member in backend.backends)
        return backend
    if isinstance(backend, ReplicaPool):
        for replica in backend.replicas:
            replica.backend = InstrumentedBackend(replica.backend, replica=replica.url)
            metrics.watch_replica(backend.name, replica.url, partial(_in_service, replica))
        return backend
    return InstrumentedBackend(backend)


def _in_service(replica: Replica) -> float:
    return 1.0 if replica.healthy else 0.0


class InstrumentedBackend:
    """Wraps any backend (a replica, a chain, a single server) once, at start-up.

    Per request it records the outcome (`ok`, `cancelled`, or the error class, such as
    `BackendUnavailable`) under the wrapped backend's name (and replica URL, in a pool), and
    the seconds to its first chunk. Chunks pass straight through: nothing is recorded per
    chunk.
    """

    def __init__(self, inner: Backend, *, replica: str = "") -> None:
        self.inner = inner
        self.name: str = inner.name
        self.replica = replica

    @property
    def accepts(self) -> frozenset[MediaKind]:
        return self.inner.accepts

    def stream(
        self, conversation: Conversation, *, on_queue: QueueListener | None = None
    ) -> AsyncIterator[str]:
        return self._stream(conversation, on_queue)

    async def _stream(
        self, conversation: Conversation, on_queue: QueueListener | None
    ) -> AsyncIterator[str]:
        started = time.monotonic()
        outcome = "ok"
        chunks = self.inner.stream(conversation, on_queue=on_queue)
        try:
            first = await anext(chunks, None)
            if first is None:
                return
            seconds = time.monotonic() - started
            metrics.observe_backend_first_chunk(self.name, self.replica, seconds)
            yield first
            async for chunk in chunks:
                yield chunk
        except Phi4Error as exc:
            outcome = type(exc).__name__
            raise
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        except Exception:
            outcome = "unexpected"
            raise
        finally:
            metrics.count_backend_request(self.name, self.replica, outcome)
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def probe(self) -> str:
        return await self.inner.probe()

    async def aclose(self) -> None:
        await self.inner.aclose()
