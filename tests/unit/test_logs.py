"""Secrets never reach a log line, tracebacks included."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest

from bot.logs import REDACTED, JsonFormatter, RedactingFormatter, configure_logging, log_ids

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


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("LOG_FORMAT = text; next step: fix it", "LOG_FORMAT = text; next step: fix it"),
        ("Authorization: Bearer x", "Authorization: Bearer [redacted]"),
        ("key=x&model=y", "key=[redacted]&model=y"),
        ("a 'x' alone, and x.", "a '[redacted]' alone, and [redacted]."),
        ("box xx x_y 2x", "box xx x_y 2x"),
    ],
)
def test_a_short_secret_is_masked_only_where_it_stands_as_a_word(line: str, shown: str) -> None:
    formatter = RedactingFormatter(["x"], "%(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, line, None, None)
    assert formatter.format(record) == shown


def test_a_secret_of_eight_characters_or_more_is_masked_anywhere() -> None:
    formatter = RedactingFormatter(["sk-12345", "pw"], "%(message)s")
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "url=/botsk-12345x/ password=pw pwned", None, None
    )
    assert formatter.format(record) == "url=/bot[redacted]x/ password=[redacted] pwned"


def json_line(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, object]:
    line = formatter.format(record)
    assert "\n" not in line, "one object per line"
    parsed = json.loads(line)
    assert isinstance(parsed, dict)
    return parsed


def test_json_lines_carry_time_level_logger_and_message() -> None:
    formatter = JsonFormatter([TOKEN])
    record = logging.LogRecord("bot.x", logging.INFO, __file__, 1, "answered %s", ("ok",), None)
    entry = json_line(formatter, record)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "bot.x"
    assert entry["message"] == "answered ok"
    assert str(entry["time"]).endswith("+00:00")


def test_json_lines_mask_secrets_even_where_json_would_escape_them() -> None:
    quoted = 'sk-"quoted\\secret'
    formatter = JsonFormatter([TOKEN, quoted])
    try:
        raise RuntimeError(f"failed at /bot{TOKEN}/sendMessage with {quoted}")
    except RuntimeError:
        record = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "url %s key %s",
            (f"/bot{TOKEN}/x", quoted),
            sys.exc_info(),
        )
    line = formatter.format(record)
    entry = json.loads(line)
    assert TOKEN not in line
    assert quoted not in str(entry) and json.dumps(quoted)[1:-1] not in line
    assert REDACTED in str(entry["message"])
    assert "RuntimeError" in str(entry["exception"])


def test_lines_logged_for_an_answer_carry_its_conversation_and_turn() -> None:
    formatter = JsonFormatter([])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    with log_ids(conversation_id=3, turn_id=17):
        inside = json_line(formatter, record)
    outside = json_line(formatter, record)
    assert (inside["conversation_id"], inside["turn_id"]) == (3, 17)
    assert "conversation_id" not in outside


async def test_tasks_started_for_an_answer_inherit_its_ids() -> None:
    formatter = JsonFormatter([])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)

    async def log_later() -> dict[str, object]:
        await asyncio.sleep(0)
        return json_line(formatter, record)

    with log_ids(conversation_id=5, turn_id=9):
        task = asyncio.create_task(log_later())
    assert (await task)["turn_id"] == 9


def test_log_format_json_is_installed_on_the_root_logger() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", [TOKEN], "json")
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        configure_logging("INFO", [TOKEN], "text")
        assert not isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
