"""Asking every backend and replica behind one Backend whether it answers, for `check`.

A chain or a pool hides its members from the pipeline; an operator checking a deployment
needs to see each of them: which answers, which refuses (and why), which answers slowly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bot.phi4.backend import Backend
from bot.phi4.chain import FallbackChain
from bot.phi4.conversation import Conversation, Turn
from bot.phi4.errors import AnswerCutAtLength, BackendTimeout, BadAnswer, Phi4Error
from bot.phi4.replicas import ReplicaPool
from bot.shared.urls import display_url

CHECK_PROMPT = "Say OK."
State = Literal["answers", "refuses", "slow"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One server a deployment may ask: which backend it belongs to and where it is."""

    backend: str
    where: str
    client: Backend
    scrub: Callable[[str], str] = str
    """Masks what the URL hides (user:password, query) in the server's own error text."""


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """What one endpoint did when asked: its state, a short detail and how long it took."""

    backend: str
    where: str
    state: State
    detail: str
    seconds: float
    error: Phi4Error | None = None
    """Why it refuses, for the failure class and the next step `check` prints."""

    @property
    def can_answer(self) -> bool:
        return self.state != "refuses"


def endpoints(backend: Backend) -> list[Endpoint]:
    """Every single server behind a backend, in the order answers would try them."""
    if isinstance(backend, FallbackChain):
        return [e for member in backend.backends for e in endpoints(member)]
    if isinstance(backend, ReplicaPool):
        return [Endpoint(backend.name, r.url, r.backend, r.scrub) for r in backend.replicas]
    where = getattr(backend, "base_url", None) or getattr(backend, "root", None) or ""
    return [Endpoint(backend.name, display_url(str(where)), backend)]


async def check_endpoint(
    endpoint: Endpoint, *, timeout: float, slow_after: float
) -> EndpointHealth:
    """Probe the endpoint, then have it answer a tiny prompt within `timeout` seconds."""
    started = time.monotonic()
    error: Phi4Error | None = None
    cut = ""
    try:
        async with asyncio.timeout(timeout):
            probed = await endpoint.client.probe()
            conversation = Conversation((Turn("user", CHECK_PROMPT),))
            try:
                answer = "".join([c async for c in endpoint.client.stream(conversation)])
            except AnswerCutAtLength as exc:  # it answers; its length limit is another matter
                answer, cut = exc.text, " (cut at the server's length limit)"
    except Phi4Error as exc:
        error = exc
    except TimeoutError:
        error = BackendTimeout(f"no complete answer within {timeout:g} s")
    except Exception as exc:
        error = Phi4Error(f"{type(exc).__name__}: {exc}")
    else:
        if not answer.strip():
            error = BadAnswer("the backend sent an empty answer")
    seconds = time.monotonic() - started
    if error is not None:
        said = str(error)
        detail = error.user_message + (f" ({said})" if said != error.user_message else "")
        state: State = "refuses"
    else:
        detail = f"probe: {probed}; answer: {answer.strip()[:60]}{cut}"
        state = "answers" if seconds < slow_after else "slow"
    return EndpointHealth(
        endpoint.backend, endpoint.where, state, endpoint.scrub(detail), seconds, error
    )


async def survey(
    backend: Backend, *, timeout: float, slow_after: float = 10.0
) -> list[EndpointHealth]:
    """Check every endpoint at once; the result keeps their order."""
    return list(
        await asyncio.gather(
            *(check_endpoint(e, timeout=timeout, slow_after=slow_after) for e in endpoints(backend))
        )
    )
