"""Backends tried in order for each answer (`PHI4_BACKEND=space,openai`), as one Backend.

The public Phi-4 Space is often out of ZeroGPU quota or asleep while the operator has a
server that could answer: the chain asks the first backend and, if it fails before its first
chunk for any reason but the request's own (out of quota, asleep, overloaded, unreachable),
asks the next. A backend that cannot take the turn's media is skipped when a later one can.
Once text was shown, a failure ends the answer: it is never restarted elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

from bot.phi4.backend import AsyncClosing, Backend, QueueListener
from bot.phi4.conversation import Conversation
from bot.phi4.errors import MediaNotSupported, Phi4Error, TurnTooLong
from bot.phi4.failover import close_stream, may_fail_over
from bot.shared import MediaKind

log = logging.getLogger(__name__)


class FallbackChain(AsyncClosing):
    """The first backend that answers, in configuration order."""

    def __init__(self, backends: Sequence[Backend]) -> None:
        if not backends:
            raise ValueError("a chain needs at least one backend")
        self.backends = tuple(backends)
        self.name = ",".join(b.name for b in self.backends)

    @property
    def accepts(self) -> frozenset[MediaKind]:
        """A turn's media is accepted when any backend takes it; `stream` routes it there."""
        return frozenset[MediaKind]().union(*(b.accepts for b in self.backends))

    def candidates(self, kinds: frozenset[MediaKind]) -> list[Backend]:
        """The backends that take these media kinds, in order.

        If none takes them all, the first backend is asked anyway, so that the refusal the
        user reads is the one it words.
        """
        able = [b for b in self.backends if kinds <= b.accepts]
        return able or [self.backends[0]]

    async def stream(
        self, conversation: Conversation, *, on_queue: QueueListener | None = None
    ) -> AsyncIterator[str]:
        """Stream from the first backend that starts answering; queue notices pass through."""
        kinds = conversation.media_kinds
        candidates = self.candidates(kinds)
        for position, backend in enumerate(candidates):
            later = candidates[position + 1 :]
            chunks = backend.stream(conversation, on_queue=on_queue)
            shown = False
            try:
                async for chunk in chunks:
                    shown = True
                    yield chunk
            except Phi4Error as exc:
                if shown or not later or not _worth_another(exc, kinds, later):
                    raise
                log.info(
                    "%s could not answer (%s); falling back to %s", backend.name, exc, later[0].name
                )
                continue
            finally:
                await close_stream(chunks)
            return

    async def probe(self) -> str:
        """Probe each backend; fine when at least one answers."""
        lines: list[str] = []
        errors: list[Phi4Error] = []
        for backend in self.backends:
            try:
                lines.append(f"{backend.name}: {await backend.probe()}")
            except Phi4Error as exc:
                errors.append(exc)
                lines.append(f"{backend.name}: {exc}")
        if len(errors) == len(self.backends):
            raise errors[0]
        return "; ".join(lines)

    async def aclose(self) -> None:
        for backend in self.backends:
            await backend.aclose()


def _worth_another(exc: Phi4Error, kinds: frozenset[MediaKind], later: Sequence[Backend]) -> bool:
    """Whether a later backend might answer: it is not the request's fault, it is media
    this backend refused and a later one takes, or a message too long for this backend's
    window (a later one's may be larger; one that is not says so before any request)."""
    if may_fail_over(exc) or isinstance(exc, TurnTooLong):
        return True
    return isinstance(exc, MediaNotSupported) and any(kinds <= b.accepts for b in later)
