"""Pure pieces of one Space turn: the Gradio history sent, and the Space's messages read back.

The Space's chat UI has no system role, so the system prompt is prefixed to the text of the
first user turn (separated by a blank line); a first turn with only media gets it as its text.
Every turn's media is sent as file messages placed right before that turn's text, as the
Gradio chatbot itself records them, so the whole context travels with every request.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bot.phi4.conversation import Attachment, Conversation, QueuePosition
from bot.phi4.errors import BackendUnavailable, BadAnswer, Phi4Error, QuotaExceeded
from bot.phi4.space.gradio_diff import AnswerTracker, DiffError
from bot.shared import Sentence

log = logging.getLogger(__name__)

FileData = dict[str, Any]
Message = dict[str, Any]

_TAG = re.compile(r"<[^>]+>")
_SECRETISH = re.compile(r"\b(?:hf_[A-Za-z0-9]{8,}|eyJ[\w-]+\.[\w-]+\.[\w-]+)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_QUOTA_WORDS = ("quota", "gpu")


def file_data(root: str, api_prefix: str, path: str, attachment: Attachment) -> FileData:
    """Gradio's FileData for an uploaded attachment, as its own JS client builds it."""
    return {
        "path": path,
        "url": f"{root}{api_prefix}/file={path}",
        "orig_name": attachment.filename,
        "size": len(attachment.data),
        "mime_type": attachment.mime_type,
        "meta": {"_type": "gradio.FileData"},
    }


def build_history(conversation: Conversation, files: Sequence[FileData]) -> list[Message]:
    """The `type="messages"` chatbot value for the whole conversation.

    `files` holds one FileData per attachment, in the order the turns carry them.
    """
    remaining = list(files)
    history: list[Message] = []
    first_user = True
    for turn in conversation.turns:
        if turn.role == "assistant":
            history.append({"role": "assistant", "content": turn.text})
            continue
        for _ in turn.attachments:
            history.append({"role": "user", "content": {"file": remaining.pop(0)}})
        text = turn.text
        if first_user and conversation.system_prompt:
            text = f"{conversation.system_prompt}\n\n{text}" if text else conversation.system_prompt
        first_user = False
        if text:
            history.append({"role": "user", "content": text})
    return history


def one_sentence(text: str, *, about: tuple[str, ...] = (), limit: int = 300) -> str:
    """One sentence of a server message, without markup or anything shaped like a token.

    The first sentence mentioning one of the `about` words is chosen, else the first one.
    """
    plain = " ".join(_TAG.sub(" ", text).split())
    plain = _SECRETISH.sub("[redacted]", plain)
    sentences = [s.strip() for s in _SENTENCE_END.split(plain) if s.strip()] or [""]
    matching = [s for s in sentences if any(word in s.lower() for word in about)]
    sentence = (matching or sentences)[0]
    if len(sentence) > limit:
        sentence = sentence[: limit - 1].rstrip() + "…"
    return sentence


def completed_error(output: Mapping[str, Any] | None) -> Phi4Error:
    """The typed error for a `process_completed` that reports failure."""
    raw = output.get("error") if isinstance(output, Mapping) else None
    if isinstance(raw, str) and any(word in raw.lower() for word in _QUOTA_WORDS):
        message = one_sentence(raw, about=_QUOTA_WORDS)
        return QuotaExceeded(f"Space quota error: {message}", user_message=message)
    message = one_sentence(raw) if isinstance(raw, str) else ""
    if message:
        return BackendUnavailable(
            f"Space error: {message}",
            user_message=Sentence("The Space could not answer: {reason}", reason=message),
        )
    return BackendUnavailable(
        "Space reported failure without a message",
        user_message=Sentence("The Space failed while answering. Please try again."),
    )


def is_asleep(status: int, body: str) -> bool:
    """Hugging Face answers 503 for a sleeping Space and names the state in the page."""
    lowered = body.lower()
    return status == 503 or "sleeping" in lowered or "paused" in lowered


def read_message(data: str) -> dict[str, Any]:
    """One SSE data field as the JSON object Gradio sends in it."""
    try:
        message = json.loads(data)
    except ValueError as exc:
        raise BadAnswer(f"Space sent non-JSON data: {data[:200]!r}") from exc
    if not isinstance(message, dict):
        raise BadAnswer(f"Space sent a non-object message: {data[:200]!r}")
    return message


def queue_position(message: Mapping[str, Any]) -> QueuePosition:
    """An `estimation` message as the position the caller is told about."""
    rank, size, eta = message.get("rank"), message.get("queue_size"), message.get("rank_eta")
    return QueuePosition(
        rank=rank if isinstance(rank, int) else 0,
        queue_size=size if isinstance(size, int) else None,
        eta_seconds=float(eta) if isinstance(eta, (int, float)) else None,
    )


def generating_piece(tracker: AnswerTracker, message: Mapping[str, Any]) -> str:
    """The new answer text a `process_generating` message carries (maybe empty)."""
    output = message.get("output")
    if message.get("success") is False:
        raise completed_error(output if isinstance(output, Mapping) else None)
    data = output.get("data") if isinstance(output, Mapping) else None
    if not isinstance(data, list):
        raise BadAnswer(f"process_generating without data: {message!r:.200}")
    try:
        return tracker.update(data)
    except DiffError as exc:
        raise BadAnswer(f"unusable diff from the Space: {exc}") from exc


def completed_rest(tracker: AnswerTracker, message: Mapping[str, Any]) -> str:
    """The answer text still owed at `process_completed`, or the error it reports.

    A completed event whose answer is empty is a `BadAnswer`: an empty reply is never passed
    off as an answer.
    """
    output = message.get("output")
    if not message.get("success", False):
        raise completed_error(output if isinstance(output, Mapping) else None)
    data = output.get("data") if isinstance(output, Mapping) else None
    if not isinstance(data, list):
        raise BadAnswer(f"process_completed without data: {message!r:.200}")
    rest = tracker.finish(data)
    if tracker.diverged:
        log.warning("the Space rewrote text already streamed; keeping the streamed text")
    if not tracker.answer:
        raise BadAnswer("the Space completed with an empty answer")
    return rest
