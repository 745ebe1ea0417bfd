"""The Space's answer stream read a wake-up at a time: messages in, answer text and state out.

Pure apart from the clock it is given: `AnswerReading.take` gets every message that arrived in
one read, replays the answer's diffs, reports queue positions and tells when the answer is
complete; the backend owns the socket and the stall watchdog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from bot.phi4.backend import QueueListener
from bot.phi4.errors import BackendUnavailable, BadAnswer
from bot.phi4.space.gradio_diff import AnswerTracker
from bot.phi4.space.turn import completed_rest, generating_piece, queue_notice
from bot.shared import Sentence

log = logging.getLogger(__name__)

QUEUED_SILENCE = 60.0
"""Seconds without a single byte, heartbeats included, after which a queued request is given up:
Gradio sends a heartbeat every 15 s, so this much silence means the connection is dead."""

CONNECTION_BROKE = Sentence(
    "The connection to the model broke before the answer was complete. Please try again."
)


@dataclass(slots=True)
class QueuedEvent:
    """One queued call; `done` once the Space has finished it and no cancel is needed."""

    session_hash: str
    event_id: str
    done: bool = False
    updates: int = 0


def _read_message(data: bytes) -> dict[str, Any]:
    """One SSE data field as the JSON object Gradio sends in it."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadAnswer(f"Space sent non-JSON data: {data[:200]!r}") from exc
    if not isinstance(message, dict):
        raise BadAnswer(f"Space sent a non-object message: {data[:200]!r}")
    return message


class AnswerReading:
    """What one event's stream has said so far, taken a wake-up's messages at a time.

    Stall rule (see the module's docstring): the deadline runs from the last real message,
    or, while the request is queued, from the last byte, heartbeats included.
    """

    __slots__ = (
        "context",
        "event",
        "forget_setup",
        "last_data",
        "on_queue",
        "parts",
        "queued",
        "told",
        "tracker",
    )

    def __init__(self, event: QueuedEvent, on_queue: QueueListener | None, now: float) -> None:
        self.event = event
        self.on_queue = on_queue
        self.tracker = AnswerTracker()
        self.queued = False
        self.last_data = now
        self.parts: list[str] = []  # answer text the messages taken so far added
        self.told = False  # a queue position has been passed on
        # what is known about the event, for failures the Space reports without a message
        self.context: Callable[[Mapping[str, Any]], str] = lambda message: ""
        self.forget_setup: Callable[[], None] = lambda: None  # refused before any output

    def deadline(self, stream_timeout: float) -> float:
        limit = max(stream_timeout, QUEUED_SILENCE) if self.queued else stream_timeout
        return self.last_data + limit

    def flush(self) -> str:
        """The answer text the messages taken since the last flush added."""
        text = "".join(self.parts)
        self.parts.clear()
        return text

    def take(self, messages: list[bytes], now: float) -> bool:
        """Take the messages that arrived together; True once the answer is complete."""
        if self.queued:
            self.last_data = now
        for data in messages:
            message = _read_message(data)
            if message.get("event_id") not in (None, self.event.event_id):
                continue
            kind = message.get("msg")
            if kind == "heartbeat":
                continue
            self.last_data = now
            if kind == "process_generating":
                self.queued = False
                self.event.updates += 1
                # the context is only read (and only worth building) for a failure
                context = self.context(message) if message.get("success") is False else ""
                self.parts.append(generating_piece(self.tracker, message, context))
            elif kind == "estimation":
                self.queued = True
                position = queue_notice(message, told=self.told)
                if position is not None and self.on_queue is not None:
                    self.told = True
                    self.on_queue(position)
            elif kind == "process_completed":
                self.event.done = True
                if message.get("success") is False and not self.event.updates:
                    self.forget_setup()  # refused before answering: re-read /config
                self.parts.append(completed_rest(self.tracker, message, self.context(message)))
                log.debug("Space answer complete: %d characters", len(self.tracker.answer))
                return True
            elif kind == "unexpected_error":
                self.event.done = True
                raise BackendUnavailable(
                    f"Space unexpected_error: {str(message.get('message'))[:200]}",
                    user_message=Sentence("The Space hit an unexpected error. Please try again."),
                )
            elif kind == "close_stream":
                raise BackendUnavailable(
                    "the Space closed the stream before completing",
                    user_message=CONNECTION_BROKE,
                )
            else:
                self.queued = self.queued and kind not in ("process_starts", "progress")
                log.debug("Space message %s", kind)
        return False
