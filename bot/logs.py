"""Logging set-up that keeps every secret out of every log line, at every level, as text or JSON."""

from __future__ import annotations

import contextvars
import datetime as dtm
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal

REDACTED = "[redacted]"
WHOLE_WORD_BELOW = 8
"""Secrets shorter than this (`OPENAI_API_KEY=x` for a local server) are masked only where
they stand as a whole word: masked anywhere, they would mangle every word holding them."""

# The conversation and turn a line was logged for; tasks started inside inherit it.
_IDS: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "phi4bot_log_ids", default=None
)


@contextmanager
def log_ids(**ids: int | None) -> Iterator[None]:
    """Tag every log line written inside the block (and its tasks) with these ids."""
    merged = dict(_IDS.get() or {})
    merged.update({name: value for name, value in ids.items() if value is not None})
    token = _IDS.set(merged)
    try:
        yield
    finally:
        _IDS.reset(token)


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then masks secrets anywhere in the line, tracebacks included.

    Bot API URLs carry the token (`.../bot<token>/getUpdates`) and python-telegram-bot and
    httpx log those URLs at DEBUG, so masking the finished line is the only safe place.
    """

    def __init__(self, secrets: Iterable[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._secrets = [s for s in ordered if len(s) >= WHOLE_WORD_BELOW]
        short = [s for s in ordered if len(s) < WHOLE_WORD_BELOW]
        words = "|".join(re.escape(s) for s in short)
        self._short = re.compile(rf"(?<!\w)(?:{words})(?!\w)") if short else None

    def redact(self, text: str) -> str:
        """`text` with every secret masked; a short one only where it stands as a word."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if self._short is not None:
            text = self._short.sub(REDACTED, text)
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(RedactingFormatter):
    """One JSON object per line: time, level, logger, message, ids where known, exception.

    Every value is masked before it is encoded (escaping could otherwise hide a secret from
    the mask), and the finished line is masked again, as text lines are.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dtm.datetime.fromtimestamp(record.created, dtm.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        entry.update(_IDS.get() or {})
        if record.exc_info:
            entry["exception"] = self.redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = self.redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = self.redact(self.formatStack(record.stack_info))
        return self.redact(json.dumps(entry, ensure_ascii=False, default=str))


class _TextWithIds(RedactingFormatter):
    """The text format, with ` [conversation_id=3 turn_id=17]` appended where known."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = _IDS.get()
        if not ids:
            return line
        tag = " ".join(f"{name}={value}" for name, value in ids.items())
        head, newline, rest = line.partition("\n")
        return f"{head} [{tag}]{newline}{rest}"


def configure_logging(
    level: str, secrets: Iterable[str], log_format: Literal["text", "json"] = "text"
) -> None:
    """Route all logging to stderr through the redacting formatter of `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(secrets))
    else:
        handler.setFormatter(
            _TextWithIds(secrets, "%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    root.setLevel(numeric if isinstance(numeric, int) else logging.INFO)
    if root.level > logging.DEBUG:
        # httpx logs every request line at INFO; that is noise for a long-polling bot.
        for name in ("httpx", "httpx2", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
