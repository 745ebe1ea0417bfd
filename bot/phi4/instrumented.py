"""A `Backend` wrapper that counts requests by outcome and times the first chunk."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from bot import metrics
from bot.phi4.backend import Backend, QueueListener
from bot.phi4.conversation import Conversation
from bot.phi4.errors import Phi4Error
from bot.shared import MediaKind


class InstrumentedBackend:
    """Wraps any backend (a replica, a chain, a single server) once, at start-up.

    Per request it records the outcome (`ok`, `cancelled`, or the error class, such as
    `BackendUnavailable`) under the wrapped backend's name, and the seconds to its first
    chunk. Chunks themselves pass straight through: nothing is recorded per chunk.
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.accepts: frozenset[MediaKind] = inner.accepts

    def stream(
        self, conversation: Conversation, *, on_queue: QueueListener | None = None
    ) -> AsyncIterator[str]:
        return self._stream(conversation, on_queue)

    async def _stream(
        self, conversation: Conversation, on_queue: QueueListener | None
    ) -> AsyncIterator[str]:
        started = time.monotonic()
        waiting_for_first = True
        outcome = "ok"
        chunks = self.inner.stream(conversation, on_queue=on_queue)
        try:
            async for chunk in chunks:
                if waiting_for_first:
                    waiting_for_first = False
                    metrics.observe_backend_first_chunk(self.name, time.monotonic() - started)
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
            metrics.count_backend_request(self.name, outcome)
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def probe(self) -> str:
        return await self.inner.probe()

    async def aclose(self) -> None:
        await self.inner.aclose()
