"""The bot's Prometheus metrics, and the small typed calls that record them from any layer.

Everything is recorded per update, per request or per answer, never per streamed chunk, so
the streaming hot path pays nothing. Labels take only values from short, fixed sets (kinds,
outcomes, method and backend names, error classes): never a chat or user id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest

# `*_created` series would double the output and tell an operator nothing.
disable_created_metrics()  # type: ignore[no-untyped-call]

UpdateKind = Literal[
    "text",
    "photo",
    "voice",
    "audio",
    "video",
    "sticker",
    "document",
    "command",
    "edited",
    "button",
    "guest",
    "ignored",
    "other",
]
TurnOutcome = Literal["answered", "failed", "stopped", "interrupted"]
TelegramOutcome = Literal["ok", "429", "4xx", "5xx", "network"]

_SECONDS_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SECONDS_WAIT = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
_SECONDS_LONG = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_SECONDS_DB = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_CHARACTERS = (50, 100, 250, 500, 1000, 2000, 4000, 8000, 16000, 32000)

UPDATES = Counter("phi4bot_updates", "Messages received, by what they hold", ["kind"])
TURNS = Counter("phi4bot_turns", "Answers, by how they ended", ["outcome"])
TIME_TO_FIRST_TEXT = Histogram(
    "phi4bot_time_to_first_text_seconds",
    "From reading a user's message to the first answer text visible in the chat",
    buckets=_SECONDS_WAIT,
)
FIRST_CHUNK_TO_VISIBLE = Histogram(
    "phi4bot_first_chunk_to_visible_seconds",
    "From the model's first chunk to the first answer text visible in the chat",
    buckets=_SECONDS_FAST,
)
ANSWER_DURATION = Histogram(
    "phi4bot_answer_duration_seconds",
    "From asking the model to the chat showing the final text",
    buckets=_SECONDS_LONG,
)
ANSWER_LENGTH = Histogram(
    "phi4bot_answer_length_characters", "Length of answers, in characters", buckets=_CHARACTERS
)
ANSWERS_STREAMING = Gauge("phi4bot_answers_streaming", "Answers being generated now")
TURNS_WAITING = Gauge("phi4bot_turns_waiting", "Turns queued behind an answer in their lane")

TELEGRAM_REQUESTS = Counter(
    "phi4bot_telegram_requests", "Bot API requests, by method and outcome", ["method", "outcome"]
)
TELEGRAM_PENALTY = Gauge(
    "phi4bot_telegram_penalty_seconds", "Longest 429 penalty still to be waited out"
)
TELEGRAM_BUDGET_USED = Gauge(
    "phi4bot_telegram_budget_used", "Paced requests counted in the current one-second window"
)
TELEGRAM_BUDGET_LIMIT = Gauge(
    "phi4bot_telegram_budget_limit", "Paced requests allowed in any one-second window"
)

BACKEND_REQUESTS = Counter(
    "phi4bot_backend_requests",
    "Model requests, by backend, replica (empty for a single server) and outcome",
    ["backend", "replica", "outcome"],
)
BACKEND_FIRST_CHUNK = Histogram(
    "phi4bot_backend_first_chunk_seconds",
    "From sending a model request to its first chunk of text",
    ["backend", "replica"],
    buckets=_SECONDS_WAIT,
)
BACKEND_REPLICA_UP = Gauge(
    "phi4bot_backend_replica_up",
    "1 while a replica of a pool is in service, 0 while it is taken out",
    ["backend", "replica"],
)
MEDIA_DECODE = Histogram(
    "phi4bot_media_decode_seconds",
    "Preparing a downloaded file for the model (image, audio, video, PDF, text)",
    ["kind"],
    buckets=_SECONDS_FAST,
)
DATABASE_OPERATION = Histogram(
    "phi4bot_database_operation_seconds",
    "Database operations, by operation",
    ["operation"],
    buckets=_SECONDS_DB,
)

_METHOD_NAME = re.compile(r"[A-Za-z]{1,40}")
_recording = True


def stop_recording() -> None:
    """Make every call below a no-op: a bot without a metrics port records nothing."""
    global _recording
    _recording = False


def answers_streaming(change: int) -> None:
    if _recording:
        ANSWERS_STREAMING.inc(change)


def turns_waiting(change: int) -> None:
    if _recording:
        TURNS_WAITING.inc(change)


def count_update(kind: UpdateKind) -> None:
    if not _recording:
        return
    UPDATES.labels(kind).inc()


def count_turn(outcome: TurnOutcome) -> None:
    if not _recording:
        return
    TURNS.labels(outcome).inc()


def record_answer(
    outcome: TurnOutcome,
    *,
    received_at: float | None,
    started_at: float,
    first_chunk_at: float | None,
    shown_at: float | None,
    ended_at: float,
    length: int,
) -> None:
    """One finished answer; times are `time.monotonic()` readings, None when unknown.

    `received_at` is when the user's message was read; answers with no such moment
    (/retry, turns recovered after a restart) count from `started_at` instead.
    """
    if not _recording:
        return
    TURNS.labels(outcome).inc()
    ANSWER_DURATION.observe(max(0.0, ended_at - started_at))
    ANSWER_LENGTH.observe(length)
    if shown_at is None or first_chunk_at is None:
        return  # no model text was shown (an error before the first chunk)
    since = received_at if received_at is not None else started_at
    TIME_TO_FIRST_TEXT.observe(max(0.0, shown_at - since))
    FIRST_CHUNK_TO_VISIBLE.observe(max(0.0, shown_at - first_chunk_at))


def telegram_method(name: str) -> str:
    """A Bot API method name as a label; anything unexpected becomes "other"."""
    return name if _METHOD_NAME.fullmatch(name) else "other"


def count_telegram_request(method: str, outcome: TelegramOutcome) -> None:
    if not _recording:
        return
    TELEGRAM_REQUESTS.labels(telegram_method(method), outcome).inc()


def telegram_outcome(status: int) -> TelegramOutcome:
    """The outcome label of an HTTP status Telegram answered with."""
    if status == 429:
        return "429"
    if 200 <= status < 300:
        return "ok"
    if status >= 500:
        return "5xx"
    return "4xx"


def watch_budget(
    *, penalty_seconds: Callable[[], float], used: Callable[[], float], limit: float
) -> None:
    """Read the pacing budget's state when scraped, so pacing itself records nothing."""
    if not _recording:
        return
    TELEGRAM_PENALTY.set_function(penalty_seconds)
    TELEGRAM_BUDGET_USED.set_function(used)
    TELEGRAM_BUDGET_LIMIT.set(limit)


def count_backend_request(backend: str, replica: str, outcome: str) -> None:
    if not _recording:
        return
    BACKEND_REQUESTS.labels(backend, replica, outcome).inc()


def observe_backend_first_chunk(backend: str, replica: str, seconds: float) -> None:
    if not _recording:
        return
    BACKEND_FIRST_CHUNK.labels(backend, replica).observe(seconds)


def watch_replica(backend: str, replica: str, up: Callable[[], float]) -> None:
    """Read whether a pool's replica is in service when scraped."""
    if not _recording:
        return
    BACKEND_REPLICA_UP.labels(backend, replica).set_function(up)


def observe_media_decode(kind: str, seconds: float) -> None:
    if not _recording:
        return
    MEDIA_DECODE.labels(kind).observe(seconds)


def observe_database(operation: str, seconds: float) -> None:
    if not _recording:
        return
    DATABASE_OPERATION.labels(operation).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """Every metric (the process's own too) in Prometheus' text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


__all__ = [
    "TelegramOutcome",
    "TurnOutcome",
    "UpdateKind",
    "answers_streaming",
    "count_backend_request",
    "count_telegram_request",
    "count_turn",
    "count_update",
    "exposition",
    "observe_backend_first_chunk",
    "observe_database",
    "observe_media_decode",
    "record_answer",
    "stop_recording",
    "telegram_method",
    "telegram_outcome",
    "turns_waiting",
    "watch_budget",
    "watch_replica",
]
