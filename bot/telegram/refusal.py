"""Telegram refusing the bot token at start-up: one sentence for the operator, never the token.

python-telegram-bot raises `InvalidToken("The token `<token>` was rejected ...")` from its
start-up `getMe` when Telegram answers 401 (a revoked or mistyped token) or 404 (a malformed
token, or a `TELEGRAM_API_URL` or proxy that is no Bot API server — where the token shown
would be the valid one). That message must not reach a terminal or a log, so the run is
wrapped here and the refusal becomes `TokenRefused`, which names the status and what to
change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from http import HTTPStatus

from telegram.error import InvalidToken

from bot.shared.urls import display_url
from bot.telegram.context import BotApplication


class TokenRefused(Exception):
    """Telegram (or whatever answers at `TELEGRAM_API_URL`) refused the token."""

    def __init__(self, status: int | None, api_url: str) -> None:
        self.status = status
        shown = f"{status} {HTTPStatus(status).phrase}" if status else "refused"
        if status == HTTPStatus.NOT_FOUND:
            advice = (
                "the token is malformed, or TELEGRAM_API_URL "
                f"({display_url(api_url)}) is not a Bot API server"
            )
        else:
            advice = "the token was revoked or mistyped; copy the current one from @BotFather"
        super().__init__(f"Telegram refused TELEGRAM_BOT_TOKEN ({shown}): {advice}.")


def _not_a_token_refusal(record: logging.LogRecord) -> bool:
    """Drops PTB's own report of the refusal (a traceback ending in the token's message):
    `TokenRefused` says it in one line."""
    return not (record.exc_info and isinstance(record.exc_info[1], InvalidToken))


def run_refusing_tokens(
    application: BotApplication,
    run: Callable[[], None],
    *,
    refused_status: Callable[[], int | None],
    api_url: str,
) -> None:
    """`run()` (PTB's `run_polling`/`run_webhook` with `close_loop=False`), then close the
    loop; a refused token becomes `TokenRefused` with PTB's message (and its token) dropped.

    PTB shuts nothing down when `initialize` fails, so the HTTP sessions are closed here,
    keeping "Unclosed client session" lines out of the output.
    """
    # PTB's retry loop logs through the logger of its utils package, `telegram.ext`.
    logging.getLogger("telegram.ext").addFilter(_not_a_token_refusal)
    try:
        run()
    except InvalidToken:
        raise TokenRefused(refused_status(), api_url) from None
    finally:
        loop = asyncio.get_event_loop()
        if not loop.is_closed():
            loop.run_until_complete(application.bot.shutdown())
            loop.close()
