"""Several replicas of one model behind one Backend: least busy first, sick ones rested.

`OPENAI_BASE_URL=http://gpu1/v1,http://gpu2/v1` builds one `OpenAIBackend` per URL and this
pool around them. Each answer goes to the healthy replica with the fewest answers in flight
(ties in turn, round robin). A replica that cannot be reached, answers 5xx or 429, or drops
a stream is taken out for a back-off period that doubles each time it fails again (capped);
only a cheap probe (`GET /models`) brings it back, never a user's request. A failure before
the first chunk is retried on the next healthy replica, so the user sees only a later start;
after text was shown it ends the answer, since restarting would repeat text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from bot.phi4.backend import AsyncClosing, Backend, QueueListener
from bot.phi4.conversation import Conversation
from bot.phi4.errors import BackendUnavailable, Phi4Error
from bot.phi4.failover import close_stream, may_fail_over, server_is_sick
from bot.shared import MediaKind
from bot.shared.urls import display_url, url_secrets

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """A snapshot of one replica, for `check`, logs and metrics."""

    url: str
    healthy: bool
    in_flight: int
    answered: int
    failed: int
    times_out: int
    """How many times in a row it was taken out (or failed its probe) since its last answer."""
    retry_in: float | None
    """Seconds until its next probe, while it is out."""
    last_error: str | None


class Replica:
    """One server of the pool and what the pool knows about it; compared by identity."""

    def __init__(self, backend: Backend, url: str) -> None:
        self.backend = backend
        self.url = display_url(url)
        self._hidden = url_secrets(url)
        self.healthy = True
        self.in_flight = 0
        self.answered = 0
        self.failed = 0
        self.times_out = 0
        self.probe_at: float | None = None
        self.last_error: str | None = None
        self.prober: asyncio.Task[None] | None = None

    def scrub(self, text: str) -> str:
        """An error's text fit for the log: the URL's credentials and query masked."""
        for hidden in self._hidden:
            text = text.replace(hidden, "***")
        return text


class ReplicaPool(AsyncClosing):
    """Replicas of the same model; the pipeline sees one backend."""

    name = "openai"

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        urls: Sequence[str],
        backoff: float = 2.0,
        backoff_max: float = 60.0,
        probe_timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not backends or len(backends) != len(urls):
            raise ValueError("a pool needs one URL per replica, and at least one replica")
        self.replicas = tuple(Replica(b, u) for b, u in zip(backends, urls, strict=True))
        self.backoff, self.backoff_max = backoff, backoff_max
        self.probe_timeout = probe_timeout
        self._clock = clock
        self._turn = 0
        self._last_failure: Phi4Error | None = None

    @property
    def accepts(self) -> frozenset[MediaKind]:
        """What every replica takes: they serve one model, so one's refusal holds for all."""
        return frozenset[MediaKind].intersection(*(r.backend.accepts for r in self.replicas))

    # -- choosing --------------------------------------------------------------------------

    def pick(self, tried: Sequence[Replica] = ()) -> Replica | None:
        """The healthy replica with the fewest answers in flight; ties in round-robin order."""
        count = len(self.replicas)
        order = [self.replicas[(self._turn + i) % count] for i in range(count)]
        ready = [r for r in order if r.healthy and r not in tried]
        if not ready:
            return None
        chosen = min(ready, key=lambda r: r.in_flight)
        self._turn = (self.replicas.index(chosen) + 1) % count
        return chosen

    async def stream(
        self, conversation: Conversation, *, on_queue: QueueListener | None = None
    ) -> AsyncIterator[str]:
        """Stream from the best replica; before the first chunk, move on to the next one."""
        tried: list[Replica] = []
        last: Phi4Error | None = None
        while (replica := self.pick(tried)) is not None:
            tried.append(replica)
            replica.in_flight += 1
            chunks = replica.backend.stream(conversation, on_queue=on_queue)
            shown = False
            try:
                async for chunk in chunks:
                    shown = True
                    yield chunk
            except Phi4Error as exc:
                self._failed(replica, exc)
                if shown or not may_fail_over(exc):
                    raise
                last = exc
                log.info(
                    "replica %s failed before answering (%s); trying another",
                    replica.url,
                    replica.last_error,
                )
                continue
            finally:
                replica.in_flight -= 1
                await close_stream(chunks)
            replica.answered += 1
            replica.times_out = 0
            return
        raise self._nobody_left(last)

    def _nobody_left(self, last: Phi4Error | None) -> Phi4Error:
        """The one error a turn gets when no replica could answer it.

        With every replica out and none asked, it is the failure that took the last one out:
        its type, class and sentence ("nothing listens", "rejected the key") still hold, and
        the operator's diagnosis reads them.
        """
        if last is not None:
            return last
        if self._last_failure is None:
            return BackendUnavailable(f"all {len(self.replicas)} replicas are out")
        log.debug("all %d replicas are out; the turn fails at once", len(self.replicas))
        return self._last_failure.with_traceback(None)

    # -- health ----------------------------------------------------------------------------

    def _failed(self, replica: Replica, exc: Phi4Error) -> None:
        replica.failed += 1
        replica.last_error = replica.scrub(str(exc))
        if server_is_sick(exc):
            self._last_failure = exc
            self.take_out(replica, replica.last_error)

    def _delay(self, replica: Replica) -> float:
        return float(min(self.backoff * 2 ** max(replica.times_out - 1, 0), self.backoff_max))

    def take_out(self, replica: Replica, reason: str) -> None:
        """Rest a replica and start probing it; a replica already out stays as it is."""
        if not replica.healthy:
            return
        replica.healthy = False
        replica.times_out += 1
        delay = self._delay(replica)
        log.warning("replica %s taken out for %g s: %s", replica.url, delay, reason)
        replica.prober = asyncio.create_task(
            self._bring_back(replica, delay), name=f"probe {replica.url}"
        )

    async def _bring_back(self, replica: Replica, delay: float) -> None:
        """Probe after each back-off until the replica answers; only then route to it again."""
        out_since = self._clock()
        while True:
            replica.probe_at = self._clock() + delay
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(self.probe_timeout):
                    await replica.backend.probe()
            except Exception as exc:
                replica.times_out += 1
                delay = self._delay(replica)
                replica.last_error = replica.scrub(str(exc) or type(exc).__name__)
                log.info(
                    "replica %s still out (probe: %s); next probe in %g s",
                    replica.url,
                    replica.last_error,
                    delay,
                )
                continue
            replica.healthy, replica.probe_at, replica.prober = True, None, None
            log.warning(
                "replica %s brought back: its probe answered after %.1f s out",
                replica.url,
                self._clock() - out_since,
            )
            return

    def status(self) -> list[ReplicaState]:
        """Every replica's state now, in configuration order."""
        now = self._clock()
        return [
            ReplicaState(
                url=r.url,
                healthy=r.healthy,
                in_flight=r.in_flight,
                answered=r.answered,
                failed=r.failed,
                times_out=r.times_out,
                retry_in=None if r.probe_at is None else max(r.probe_at - now, 0.0),
                last_error=r.last_error,
            )
            for r in self.replicas
        ]

    async def probe(self) -> str:
        """Probe every replica at once; fine when at least one answers."""

        async def one(replica: Replica) -> str | Exception:
            try:
                async with asyncio.timeout(self.probe_timeout):
                    return await replica.backend.probe()
            except Exception as exc:
                return exc

        results = await asyncio.gather(*(one(r) for r in self.replicas))
        good = [r for r in results if isinstance(r, str)]
        if not good:
            first = results[0]
            raise first if isinstance(first, Phi4Error) else BackendUnavailable(str(first))
        return f"{len(good)} of {len(results)} replicas answer; " + "; ".join(good)

    async def aclose(self) -> None:
        """Stop the probes, then close every replica's client."""
        probers = [r.prober for r in self.replicas if r.prober is not None]
        for task in probers:
            task.cancel()
        for task in probers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for replica in self.replicas:
            await replica.backend.aclose()
