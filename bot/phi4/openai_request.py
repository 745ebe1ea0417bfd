"""What an OpenAI-compatible chat request carries: the messages, media as parts, the address."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from bot.phi4.conversation import Attachment, Conversation, Turn
from bot.shared import MediaKind

MEDIA_KINDS: frozenset[MediaKind] = frozenset({"image", "audio"})
_AUDIO_FORMATS = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
}


def _audio_format(mime_type: str) -> str:
    """Azure takes only 'wav' or 'mp3'; vLLM sniffs the bytes, so the subtype is a fair guess."""
    return _AUDIO_FORMATS.get(mime_type, mime_type.partition("/")[2] or "wav")


def _media_part(attachment: Attachment) -> dict[str, Any]:
    encoded = base64.b64encode(attachment.data).decode("ascii")
    if attachment.kind == "image":
        url = f"data:{attachment.mime_type};base64,{encoded}"
        return {"type": "image_url", "image_url": {"url": url}}
    fmt = _audio_format(attachment.mime_type)
    return {"type": "input_audio", "input_audio": {"data": encoded, "format": fmt}}


def _message(turn: Turn) -> dict[str, Any]:
    if turn.role == "assistant" or not turn.attachments:
        return {"role": turn.role, "content": turn.text}
    parts: list[dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text else []
    parts.extend(_media_part(a) for a in turn.attachments)
    return {"role": "user", "content": parts}


def build_messages(conversation: Conversation) -> list[dict[str, Any]]:
    """Chat-completions messages: the system prompt first, then every turn in order."""
    messages: list[dict[str, Any]] = []
    if conversation.system_prompt:
        messages.append({"role": "system", "content": conversation.system_prompt})
    messages.extend(_message(turn) for turn in conversation.turns)
    return messages


def split_query(base_url: str) -> tuple[str, dict[str, str]]:
    """Azure needs `?api-version=...` on every call, so the query is kept and sent each time."""
    parts = urlsplit(base_url)
    query = dict(parse_qsl(parts.query))
    return urlunsplit(parts._replace(query="")).rstrip("/"), query


def without_credentials(url: str) -> str:
    """`url` without a `user:password@` part, which aiohttp will not send beside a header."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
