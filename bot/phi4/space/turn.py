"""Pure pieces of one Space turn: the Gradio history sent, and the Space's messages read back.

The Space's chat UI has no system role, so the system prompt is prefixed to the text of the
first user turn (separated by a blank line); a first turn with only media gets it as its text.

Each file travels once per request. The answer function takes two inputs: the chatbot history
and this turn's file messages. This turn's files go only in the second input (as the reference
client sent them) and its text only in the history. Earlier turns' media stay in the history as
file messages placed right before their turn's text, as the Gradio chatbot records them, so
the whole context travels with every request and nothing is repeated.

Message content takes the shape the Space's Gradio validates: a string or `{"file": FileData}`
up to Gradio 5, a list of parts (`{"type": "text", "text": ...}`, `{"type": "file", "file":
FileData}`) from Gradio 6 on, which refuses string content.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

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
_SPACE_FAILED = Sentence("The Space failed while answering. Please try again.")
_QUOTA_WORDS = ("quota", "gpu")
_MAJOR = re.compile(r"\s*(\d+)")

MessageShape = Literal["plain", "parts"]


def message_shape(version: str | None) -> MessageShape:
    """The content shape a Gradio version validates; an unknown version is taken as Gradio 5."""
    major = _MAJOR.match(version or "")
    return "parts" if major is not None and int(major.group(1)) >= 6 else "plain"


def text_message(role: str, text: str, shape: MessageShape) -> Message:
    content: Any = [{"type": "text", "text": text}] if shape == "parts" else text
    return {"role": role, "content": content}


def file_message(file: FileData, shape: MessageShape) -> Message:
    content: Any = [{"type": "file", "file": file}] if shape == "parts" else {"file": file}
    return {"role": "user", "content": content}


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


def user_text(conversation: Conversation, index: int) -> str:
    """The text sent for the user turn at `index`: the first one carries the system prompt."""
    text = conversation.turns[index].text
    first_user = next(i for i, t in enumerate(conversation.turns) if t.role == "user")
    if index == first_user and conversation.system_prompt:
        return f"{conversation.system_prompt}\n\n{text}" if text else conversation.system_prompt
    return text


def build_history(
    conversation: Conversation, earlier_files: Sequence[FileData], shape: MessageShape = "plain"
) -> list[Message]:
    """The chatbot history for the whole conversation; the last turn contributes its text only.

    `earlier_files` holds one FileData per attachment of every turn but the last, in order.
    """
    remaining = list(earlier_files)
    history: list[Message] = []
    last = len(conversation.turns) - 1
    for index, turn in enumerate(conversation.turns):
        if turn.role == "assistant":
            history.append(text_message("assistant", turn.text, shape))
            continue
        if index != last:
            history.extend(file_message(remaining.pop(0), shape) for _ in turn.attachments)
        text = user_text(conversation, index)
        if text:
            history.append(text_message("user", text, shape))
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


def completed_error(output: Mapping[str, Any] | None, context: str = "") -> Phi4Error:
    """The typed error for a `process_completed` that reports failure.

    Gradio sends `"error": null` when the Space does not set `show_error`; `context` (what the
    caller knows: Gradio version, function, event title) then stands in the detail instead.
    """
    raw = output.get("error") if isinstance(output, Mapping) else None
    if isinstance(raw, str) and any(word in raw.lower() for word in _QUOTA_WORDS):
        # The Space's own words go to the log only: a server's text is never shown in a chat.
        message = one_sentence(raw, about=_QUOTA_WORDS)
        return QuotaExceeded(f"Space quota error: {message}")
    message = one_sentence(raw) if isinstance(raw, str) else ""
    if message:
        return BackendUnavailable(f"Space error: {message}", user_message=_SPACE_FAILED)
    detail = "Space reported failure without a message" + (f" ({context})" if context else "")
    return BackendUnavailable(detail, user_message=_SPACE_FAILED)


def failure_context(
    version: str | None, answer_fn: int, status: int, message: Mapping[str, Any], updates: int
) -> str:
    """What is known about a failed event, for the detail of a failure without a message."""
    output = message.get("output")
    title = message.get("title")
    if title is None and isinstance(output, Mapping):
        title = output.get("title")
    when = (
        f"after {updates} streamed update(s)"
        if updates
        else "before any output, as when the request is refused"
    )
    context = (
        f"Gradio {version or 'of unknown version'}, function {answer_fn}, "
        f"stream HTTP {status}, event title {title!r}, {when}"
    )
    error = output.get("error") if isinstance(output, Mapping) else None
    if message.get("success") is False and not error:
        log.warning("the Space failed without a message: %s", context)
    return context


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


def queue_notice(message: Mapping[str, Any], *, told: bool) -> QueuePosition | None:
    """The position to tell the caller about, or None when there is no queue worth a notice.

    Gradio sends rank 0 even to a request it starts at once, and rank 0 with nobody waiting
    ahead is no queue either: only rank 1 or more is. Once a position has been told, later
    estimations (down to rank 0) are passed on as updates of it.
    """
    position = queue_position(message)
    return position if position.rank >= 1 or told else None


def generating_piece(tracker: AnswerTracker, message: Mapping[str, Any], context: str = "") -> str:
    """The new answer text a `process_generating` message carries (maybe empty)."""
    output = message.get("output")
    if message.get("success") is False:
        raise completed_error(output if isinstance(output, Mapping) else None, context)
    data = output.get("data") if isinstance(output, Mapping) else None
    if not isinstance(data, list):
        raise BadAnswer(f"process_generating without data: {message!r:.200}")
    try:
        return tracker.update(data)
    except DiffError as exc:
        raise BadAnswer(f"unusable diff from the Space: {exc}") from exc


def completed_rest(tracker: AnswerTracker, message: Mapping[str, Any], context: str = "") -> str:
    """The answer text still owed at `process_completed`, or the error it reports.

    A completed event whose answer is empty is a `BadAnswer`: an empty reply is never passed
    off as an answer.
    """
    output = message.get("output")
    if not message.get("success", False):
        raise completed_error(output if isinstance(output, Mapping) else None, context)
    data = output.get("data") if isinstance(output, Mapping) else None
    if not isinstance(data, list):
        raise BadAnswer(f"process_completed without data: {message!r:.200}")
    rest = tracker.finish(data)
    if tracker.diverged:
        log.warning("the Space rewrote text already streamed; keeping the streamed text")
    if not tracker.answer:
        raise BadAnswer("the Space completed with an empty answer")
    return rest
