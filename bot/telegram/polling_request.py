"""The long poll's HTTP layer: after a network error or a 5xx, ask again within 2 s at most.

python-telegram-bot's polling loop sleeps 1 s after such a failure and 1.5 times longer after
each further one (up to 30 s), so after a 15 s outage of Telegram it was still sleeping
seconds after Telegram answered again, and messages written meanwhile waited 12 s and more.
Here the poll itself waits a short, capped back-off (`RETRY_DELAYS`, then `RETRY_CAP`) and
then reports a timeout, on which PTB's loop retries at once: updates are fetched within
`RETRY_CAP` seconds of Telegram's return, one request every 2 s while it is away, which no
rate limit minds. The outage is logged once when it starts and once when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from http import HTTPStatus
from typing import Any

from telegram.error import NetworkError, TimedOut

from bot.telegram.metered_request import MeteredRequest

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.25, 0.5, 1.0)
RETRY_CAP = 2.0


class PollingRequest(MeteredRequest):
    """`getUpdates` requests (PTB's `get_updates_request`), retried on a short leash."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._failures = 0
        self._failing_since: float | None = None

    async def do_request(
        self, url: str, method: str, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        try:
            code, payload = await super().do_request(url, method, *args, **kwargs)
        except NetworkError as exc:  # no answer: refused, reset, timed out
            await self._wait_after(str(exc))
            raise TimedOut(f"polling again after: {exc}") from exc
        if code >= HTTPStatus.INTERNAL_SERVER_ERROR:
            await self._wait_after(f"HTTP {code}")
            raise TimedOut(f"polling again after HTTP {code}")
        if self._failing_since is not None:
            took = time.monotonic() - self._failing_since
            log.info("Telegram answers the long poll again after %.0f s", took)
            self._failing_since, self._failures = None, 0
        return code, payload

    async def _wait_after(self, what: str) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.warning(
                "Telegram did not answer the long poll (%s); asking again every %g s at most",
                what,
                RETRY_CAP,
            )
        delay = RETRY_DELAYS[self._failures] if self._failures < len(RETRY_DELAYS) else RETRY_CAP
        self._failures += 1
        await asyncio.sleep(delay)
