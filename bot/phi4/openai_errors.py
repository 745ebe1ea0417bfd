"""How an OpenAI-compatible server says something went wrong, and the typed error it becomes.

Servers differ (vLLM, Azure, GitHub Models, Ollama), but all answer an error status with an
OpenAI-style body or put an error event into the stream; each failure becomes one `Phi4Error`
with a sentence a chat user can act on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import aiohttp

from bot.phi4.error_body import ERROR_BODY_BYTES, parse_error_body
from bot.phi4.errors import (
    AnswerBrokenOff,
    BackendTimeout,
    BackendUnavailable,
    BadAnswer,
    ContextOverflow,
    EmptyStream,
    FailureClass,
    Phi4Error,
    QuotaExceeded,
)
from bot.phi4.failures import misconfigured_answer, misconfigured_connection
from bot.phi4.openai_window import overflow_from
from bot.shared import MediaKind, Sentence

RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
GATEWAY_STATUSES = frozenset({502, 503, 504})
"""5xx a proxy or an overloaded server answers: they say nothing about the request."""
RETRY_FIRST, RETRY_MAX = 0.5, 8.0  # seconds before the first retry; the longest wait
_MEDIA_WORDS = (
    "image",
    "audio",
    "vision",
    "multimodal",
    "multi-modal",
    "modalit",
    "content part",
    "content_part",
    "media",
    "validation",
    "unsupported",
    "not support",
)
"""Words of an error that names a content part, a media type, validation or a feature."""


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


async def status_failure(response: aiohttp.ClientResponse) -> Failure:
    """The failure an error answer describes (its body read up to `ERROR_BODY_BYTES`)."""
    raw = await response.content.read(ERROR_BODY_BYTES)
    body = parse_error_body(raw, status=response.status)
    return Failure("status", response.status, body.message, body.code)


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
        return AnswerBrokenOff(f"{where} dropped the connection mid-answer ({type(exc).__name__})")
    return misconfigured_connection(exc, where) or BackendUnavailable(
        f"cannot connect to {where} ({type(exc).__name__})"
    )


def translate(failure: Failure, *, where: str, model: str) -> Phi4Error:
    """One typed error per failure, each with a sentence a chat user can act on.

    The server's own words go to the log only; whether a failure on a request with media is
    the server refusing that media is for the backend to judge (see `may_refuse_media`).
    """
    message, status = failure.message, failure.status
    detail = f"{where} answered {status}: {message}"
    status_code = status if isinstance(status, int) else None
    overflow = overflow_from(error_code_of(failure), message, detail=detail)
    if overflow is not None:
        return overflow
    misconfigured = misconfigured_answer(status, message, where=where, model=model)
    if misconfigured is not None:
        return misconfigured
    lowered = message.lower()
    if status in (429, 503, "rate_limit_exceeded") or "rate limit" in lowered:
        return QuotaExceeded(detail, status=status_code)
    if failure.kind == "event":  # an error event in the middle of the stream
        return BackendUnavailable(
            f"{where} failed mid-answer: {message}",
            user_message=Sentence("The model failed while answering. Please try again."),
        )
    if status_code is not None and 400 <= status_code < 500:
        return BadAnswer(
            detail,
            user_message=Sentence(
                "The model server refused this message. Try sending it differently."
            ),
            status=status_code,
        )
    return BackendUnavailable(detail, status=status_code)


def may_refuse_media(error: Phi4Error, failure: Failure | None) -> bool:
    """Whether a failure of a request carrying media has the shape of a media refusal.

    An empty stream, a 4xx that is not about the key, the model, the load or the length,
    a 5xx that is not a gateway's or an overloaded server's, or any error that names a
    content part, a media type, validation or an unsupported feature. Shape alone does not
    make it one: the server must also be known to answer text (the backend checks that).
    """
    if isinstance(error, EmptyStream):
        return True
    if failure is None or isinstance(error, ContextOverflow | QuotaExceeded | BackendTimeout):
        return False
    if error.failure_class is FailureClass.CONFIGURATION:
        return False
    status = failure.status
    if failure.kind == "status" and isinstance(status, int) and 400 <= status < 600:
        return status not in GATEWAY_STATUSES | {408, 409, 429}
    lowered = failure.message.lower()
    return any(word in lowered for word in _MEDIA_WORDS)


def media_refusal_detail(kinds: frozenset[MediaKind], where: str, error: Phi4Error) -> str:
    """The log's account of a media refusal: which media, where, and what the server said."""
    return f"{where} refused {', '.join(sorted(kinds))} ({type(error).__name__}: {error})"
