"""python-telegram-bot's HTTP layer, counting every Bot API request and noting Telegram's pulse."""

from __future__ import annotations

import time
from typing import Any

from bot import metrics
from bot.telegram.aiohttp_request import AiohttpRequest, api_method


class TelegramPulse:
    """When Telegram last gave any HTTP answer (a 4xx or 429 too: it is up and talking)."""

    def __init__(self) -> None:
        self.answered_at: float | None = None
        self.refused: int | None = None
        """The status of the last 401 or 404 answer: how Telegram refuses a token."""


class MeteredRequest(AiohttpRequest):
    """Every request the bot makes (sends, edits, getUpdates, getFile, downloads) goes
    through here once: it is counted by method and outcome, and the pulse is updated.

    This is the one place that sees the HTTP status itself, so 429, other 4xx and 5xx are
    told apart without reading error messages; a request without an answer is `network`.
    """

    def __init__(self, pulse: TelegramPulse, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pulse = pulse

    async def do_request(
        self, url: str, method: str, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        name = api_method(url)
        try:
            code, payload = await super().do_request(url, method, *args, **kwargs)
        except Exception:
            metrics.count_telegram_request(name, "network")
            raise
        self.pulse.answered_at = time.monotonic()
        if code in (401, 404):
            self.pulse.refused = code
        metrics.count_telegram_request(name, metrics.telegram_outcome(code))
        return code, payload
