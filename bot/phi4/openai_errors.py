"""How an OpenAI-compatible server says something went wrong, and the typed error it becomes.

Servers differ (vLLM, Azure, GitHub Models, Ollama), but all answer an error status with an
OpenAI-style body or put an error event into the stream; each failure becomes one `Phi4Error`
with a sentence a chat user can act on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import cast

import aiohttp
import orjson

from bot.phi4.errors import (
    BackendTimeout,
    BackendUnavailable,
    BadAnswer,
    MediaNotSupported,
    Phi4Error,
    QuotaExceeded,
)
from bot.phi4.failures import misconfigured_answer, misconfigured_connection
from bot.phi4.openai_window import overflow_from
from bot.shared import MediaKind, Sentence, media_nouns

_MEDIA_WORDS = ("image", "audio", "vision", "multimodal", "multi-modal", "modalit")
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
RETRY_FIRST, RETRY_MAX = 0.5, 8.0  # seconds before the first retry; the longest wait
ERROR_BODY_BYTES = 65536  # of an error answer, enough for any message a server writes


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong, before it is judged: HTTP status (or an error event's code) and text."""

    kind: str  # "status": an HTTP error answer; "event": an error inside the stream
    status: object
    message: str
    code: object = None
    """The body's `error.code`, such as vLLM's `context_length_exceeded`."""


class ServerError(Exception):
    """An error answer or error event, carried out of the read loop to be translated."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def error_message(body: object, fallback: str) -> str:
    """The server's own sentence from an OpenAI-style error body (`{"error": {"message"}}`)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return cast(str, inner["message"])
        if isinstance(inner, str):
            return inner
    return fallback


def error_code(body: object) -> object:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get("code")
    return None


async def status_failure(response: aiohttp.ClientResponse) -> Failure:
    """The failure an error answer describes (its body read up to `ERROR_BODY_BYTES`)."""
    raw = await response.content.read(ERROR_BODY_BYTES)
    try:
        body: object = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    text = raw.decode("utf-8", errors="replace").strip()
    fallback = f"Error code: {response.status}" + (f" - {text[:500]}" if text else "")
    return Failure("status", response.status, error_message(body, fallback), error_code(body))


def error_code_of(failure: Failure) -> object:
    """The error's code (`context_length_exceeded`), or its status when it has none."""
    return failure.code if failure.code is not None else failure.status


def retry_delay(attempt: int, retry_after: str | None) -> float:
    """The server's `retry-after` when it is short, else exponential backoff with jitter."""
    try:
        wanted = float(retry_after) if retry_after else -1.0
    except ValueError:
        wanted = -1.0
    if 0 <= wanted <= 60:
        return wanted
    return min(RETRY_MAX, RETRY_FIRST * 2.0**attempt) * (1 - 0.25 * random.random())


def connection_error(exc: aiohttp.ClientError, *, where: str, started: bool) -> Phi4Error:
    """A connection that failed or broke, told apart by whether the answer had begun."""
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return BackendTimeout(f"{where} timed out")
    if started:
        return BackendUnavailable(
            f"{where} dropped the connection mid-answer ({type(exc).__name__})",
            user_message=Sentence(
                "The connection to the model broke off mid-answer. Please try again."
            ),
        )
    return misconfigured_connection(exc, where) or BackendUnavailable(
        f"cannot connect to {where} ({type(exc).__name__})"
    )


def translate(
    failure: Failure, *, where: str, model: str, kinds: frozenset[MediaKind]
) -> Phi4Error:
    """One typed error per failure, each with a sentence a chat user can act on."""
    message, status = failure.message, failure.status
    detail = f"{where} answered {status}: {message}"
    lowered = message.lower()
    if kinds and status in (400, 422, "400") and any(w in lowered for w in _MEDIA_WORDS):
        return MediaNotSupported(
            detail,
            user_message=Sentence(
                "The model server cannot take {media}. Send text.", media=media_nouns(kinds)
            ),
        )
    misconfigured = misconfigured_answer(status, message, where=where, model=model)
    if misconfigured is not None:
        return misconfigured
    if status in (429, 503, "rate_limit_exceeded") or "rate limit" in lowered:
        return QuotaExceeded(detail)
    overflow = overflow_from(error_code_of(failure), message, detail=detail)
    if overflow is not None:
        return overflow
    if failure.kind == "event":  # an error event in the middle of the stream
        return BackendUnavailable(
            f"{where} failed mid-answer: {message}",
            user_message=Sentence("The model failed while answering. Please try again."),
        )
    if isinstance(status, int) and 400 <= status < 500:
        return BadAnswer(
            detail,
            user_message=Sentence(
                "The model server refused the request: {reason}", reason=message[:200]
            ),
        )
    return BackendUnavailable(detail)
