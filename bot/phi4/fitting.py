"""A `Backend` wrapper that sends each server only what fits its context window.

Every answer used to re-send history cut by characters, which has nothing to do with the
model's window: a 512-token llama.cpp server refused the fourth turn, and a 128k vLLM saw a
fraction of what it could. The wrapper learns the window (what the server states, else the
configured `PHI4_CONTEXT_TOKENS`), keeps the newest turns that fit with room for the answer
(`window.fit`), and when the server still refuses the prompt as too long — vLLM's 400, or
llama.cpp's empty answer to an over-long streamed prompt — learns the real window from the
refusal, drops more and asks once more, so the chat never sees that error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from bot.phi4.backend import AsyncClosing, Backend, QueueListener
from bot.phi4.chain import FallbackChain
from bot.phi4.conversation import Conversation
from bot.phi4.errors import ContextOverflow, EmptyStream, Phi4Error, TurnTooLong
from bot.phi4.failover import close_stream
from bot.phi4.replicas import ReplicaPool
from bot.phi4.window import Fitted, answer_room, fit
from bot.shared import MediaKind

log = logging.getLogger(__name__)

ASK_AGAIN_AFTER = 1800.0
"""Seconds before a server that stated no window is asked again (it may have restarted with
one); a refusal teaches the window sooner when it changed."""
NEAR_THE_WINDOW = 0.5
"""An empty answer to a prompt over this share of a stated window is taken as an overflow."""
SAFETY = 0.9
"""After a refusal, aim this far below what the refusal says would have fitted."""


@runtime_checkable
class WindowReporting(Protocol):
    """A server that can state its window and say whether a prompt overflows it."""

    async def context_window(self) -> int | None: ...

    async def overflow(self, conversation: Conversation) -> ContextOverflow | None: ...


class WindowFitting(AsyncClosing):
    """Wraps one server (not a chain or pool: each member has its own window)."""

    def __init__(
        self,
        inner: Backend,
        *,
        window: int,
        answer_tokens: int,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.configured_window = window
        self.answer_tokens = answer_tokens
        self.stated_window: int | None = None
        """The window the server stated or its refusal named, once known."""
        self.undercount = 1.0
        """How many tokens the server counted per estimated one, when a refusal showed it
        counts more (a tokenizer unlike Phi-4's); later budgets shrink by as much."""
        self._asked_at: float | None = None

    @property
    def accepts(self) -> frozenset[MediaKind]:
        """The wrapped server's, as it stands now: it may learn that it refuses some media."""
        return self.inner.accepts

    async def window(self) -> int:
        """The window to fit: the server's, when it says, else the configured one."""
        if self.stated_window is not None:
            return self.stated_window
        reporting = self.inner if isinstance(self.inner, WindowReporting) else None
        now = time.monotonic()
        if reporting is not None and (
            self._asked_at is None or now - self._asked_at > ASK_AGAIN_AFTER
        ):
            self._asked_at = now
            stated = await reporting.context_window()
            if stated is not None:
                log.info("%s states a context window of %d tokens", self.name, stated)
                self.stated_window = stated
                return stated
        return self.configured_window

    def budget(self, window: int) -> int:
        """Estimated prompt tokens a window leaves once the answer has its room."""
        return int((window - answer_room(window, self.answer_tokens)) / self.undercount)

    async def stream(
        self, conversation: Conversation, *, on_queue: QueueListener | None = None
    ) -> AsyncIterator[str]:
        """Stream the answer to the newest turns that fit; one silent retry with fewer."""
        window = await self.window()
        fitted = fit(conversation, budget=self.budget(window))
        _log_kept(fitted, window)
        chunks = self.inner.stream(fitted.conversation, on_queue=on_queue)
        shown = False
        try:
            async for chunk in chunks:
                shown = True
                yield chunk
            return
        except (ContextOverflow, EmptyStream) as exc:
            if shown:
                raise
            refusal: Phi4Error = exc
        finally:
            await close_stream(chunks)
        smaller = await self._budget_after(refusal, fitted, window)
        if smaller is None:
            raise refusal
        retry = fit(conversation, budget=smaller)
        if retry.turns_kept >= fitted.turns_kept and retry.media_dropped <= fitted.media_dropped:
            raise TurnTooLong(f"{self.name} refused the message alone: {refusal}") from refusal
        log.info(
            "%s refused ~%d tokens as too long (%s); asking again with %d of %d turns",
            self.name,
            fitted.tokens,
            type(refusal).__name__,
            retry.turns_kept,
            retry.turns_given,
        )
        _log_kept(retry, self.stated_window or window)
        again = self.inner.stream(retry.conversation, on_queue=on_queue)
        try:
            async for chunk in again:
                yield chunk
        except ContextOverflow as exc:
            raise TurnTooLong(f"{self.name} refused the shortened prompt too: {exc}") from exc
        finally:
            await close_stream(again)

    async def _budget_after(self, refusal: Phi4Error, fitted: Fitted, window: int) -> int | None:
        """A budget the server should take, learned from its refusal; None when the refusal
        was not about length after all (the empty answer is then reported as it is)."""
        overflow = refusal if isinstance(refusal, ContextOverflow) else None
        if isinstance(refusal, EmptyStream):
            if self.stated_window is not None and fitted.tokens < NEAR_THE_WINDOW * window:
                return None  # far inside a window the server stated: not an overflow
            if isinstance(self.inner, WindowReporting):
                overflow = await self.inner.overflow(fitted.conversation)
                if overflow is None:
                    return None
            elif fitted.tokens < NEAR_THE_WINDOW * window:
                return None
        if overflow is not None and overflow.window is not None:
            if self.stated_window != overflow.window:
                log.info("%s named its context window: %d tokens", self.name, overflow.window)
            self.stated_window = window = overflow.window
        requested = overflow.requested if overflow is not None else None
        if requested and requested > fitted.tokens:
            # the server counts more than the estimate: budgets shrink by as much from now on
            self.undercount = max(self.undercount, requested / fitted.tokens)
        return int(min(self.budget(window), fitted.tokens) * SAFETY)

    async def probe(self) -> str:
        """The server's answer to the probe, and the window its prompts are fitted to."""
        answered = await self.inner.probe()
        window = await self.window()
        source = "as the server states" if self.stated_window else "PHI4_CONTEXT_TOKENS"
        return f"{answered}; context window {window} tokens ({source})"

    async def aclose(self) -> None:
        await self.inner.aclose()


def fitted_window(backend: Backend) -> int | None:
    """The largest window any server behind `backend` fits prompts to (what it stated, else
    the configured one), so the caller reads no more history than could be sent; None when
    nothing behind it is fitted."""
    if isinstance(backend, WindowFitting):
        return backend.stated_window or backend.configured_window
    members: list[Backend]
    if isinstance(backend, FallbackChain):
        members = list(backend.backends)
    elif isinstance(backend, ReplicaPool):
        members = [replica.backend for replica in backend.replicas]
    else:  # a wrapper, such as the metrics' InstrumentedBackend
        inner = getattr(backend, "inner", None)
        members = [inner] if isinstance(inner, Backend) else []
    windows = [w for w in map(fitted_window, members) if w is not None]
    return max(windows) if windows else None


def _log_kept(fitted: Fitted, window: int) -> None:
    log.debug(
        "context: %d of %d turns kept (~%d tokens, window %d, %d media dropped)",
        fitted.turns_kept,
        fitted.turns_given,
        fitted.tokens,
        window,
        fitted.media_dropped,
    )
