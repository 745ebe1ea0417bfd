"""Whether the bot can answer now: the database answers, Telegram answers, a backend is usable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.phi4 import Backend
from storage import Store

TELEGRAM_FRESH = 60.0  # Telegram must have answered within this many seconds
CHECK_TIMEOUT = 5.0  # each check gives up after this long
BACKEND_RECHECK = 5.0  # a backend probe's result is reused for this long
REPORT_TTL = 5.0  # a whole report is reused for this long: scrapes cost nothing more
OK = "ok"


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    """Each check's result: "ok", or the reason it failed."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(result == OK for result in self.checks.values())

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"ready": self.ready, "checks": self.checks}
        failing = [f"{name}: {result}" for name, result in self.checks.items() if result != OK]
        if failing:
            body["reason"] = "; ".join(failing)
        return body


@dataclass
class Readiness:
    """Runs the three checks side by side, each bounded by `CHECK_TIMEOUT`.

    Telegram counts as answering when any request got an HTTP answer within the last
    minute (long polling asks every 30 s); when none did, as behind a quiet webhook, the
    check asks Telegram itself (`ask_telegram`, e.g. getMe) before saying no.

    However many ask at once, one check is in flight and its report is reused for
    `REPORT_TTL` seconds: fifty scrapes make one database query, at most one getMe and one
    backend probe, not fifty of each.
    """

    store: Store
    backend: Backend
    telegram_answered_at: Callable[[], float | None]
    ask_telegram: Callable[[], Awaitable[object]]
    redact: Callable[[str], str] = lambda text: text
    clock: Callable[[], float] = time.monotonic
    _backend_result: tuple[float, str] | None = field(default=None, init=False)
    _report: tuple[float, ReadinessReport] | None = field(default=None, init=False)
    _checking: asyncio.Future[ReadinessReport] | None = field(default=None, init=False)

    async def check(self) -> ReadinessReport:
        """The latest report if it is fresh, else the one being made (made now if none is)."""
        if self._report is not None and self.clock() - self._report[0] < REPORT_TTL:
            return self._report[1]
        if self._checking is None:
            self._checking = asyncio.ensure_future(self._check_now())
            self._checking.add_done_callback(self._checked)
        # shielded: one caller giving up must not cancel the check the others wait for
        return await asyncio.shield(self._checking)

    def _checked(self, done: asyncio.Future[ReadinessReport]) -> None:
        self._checking = None
        if not done.cancelled() and done.exception() is None:
            self._report = (self.clock(), done.result())

    async def _check_now(self) -> ReadinessReport:
        names = ("database", "telegram", "backend")
        results = await asyncio.gather(
            self._bounded(self._database()),
            self._bounded(self._telegram()),
            self._bounded(self._backend()),
        )
        return ReadinessReport(
            {name: self.redact(r) for name, r in zip(names, results, strict=True)}
        )

    async def _bounded(self, check: Awaitable[str]) -> str:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                return await check
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT:g} s"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    async def _database(self) -> str:
        await self.store.get_setting(0, "readiness-check")
        return OK

    def _telegram_fresh(self) -> bool:
        answered = self.telegram_answered_at()
        return answered is not None and self.clock() - answered <= TELEGRAM_FRESH

    async def _telegram(self) -> str:
        if self._telegram_fresh():
            return OK
        try:
            await self.ask_telegram()
        except Exception as exc:
            return f"Telegram did not answer within the last minute ({type(exc).__name__})"
        if self._telegram_fresh():
            return OK
        return "Telegram did not answer within the last minute"

    async def _backend(self) -> str:
        now = self.clock()
        if self._backend_result is not None and now - self._backend_result[0] < BACKEND_RECHECK:
            return self._backend_result[1]
        try:
            await self.backend.probe()
            result = OK
        except Exception as exc:
            result = f"no usable backend: {type(exc).__name__}: {exc}"
        self._backend_result = (self.clock(), result)
        return result
