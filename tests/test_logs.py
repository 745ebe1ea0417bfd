"""Secrets never reach a log line, tracebacks included."""

from __future__ import annotations

import logging

from bot.logs import REDACTED, RedactingFormatter

TOKEN = "123456:AAE-secret-token-value"


def test_the_token_in_a_bot_api_url_is_masked() -> None:
    formatter = RedactingFormatter([TOKEN, "sk-key"], "%(message)s")
    record = logging.LogRecord(
        "httpx", logging.DEBUG, __file__, 1, "POST %s", (f"https://x/bot{TOKEN}/getMe",), None
    )
    line = formatter.format(record)
    assert TOKEN not in line
    assert f"/bot{REDACTED}/getMe" in line


def test_secrets_in_exception_text_are_masked() -> None:
    formatter = RedactingFormatter([TOKEN], "%(message)s")
    try:
        raise RuntimeError(f"failed at /bot{TOKEN}/sendMessage")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    assert TOKEN not in formatter.format(record)


def test_short_or_empty_secrets_are_ignored() -> None:
    formatter = RedactingFormatter(["", "ab"], "%(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "abc", None, None)
    assert formatter.format(record) == "abc"
