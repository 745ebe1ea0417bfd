"""Reading a server's error answer: its message and code, even from a body cut short.

Servers put a lot into error bodies: llama.cpp's server answers an audio part it cannot
take with a 389 kB validation dump that repeats the base64 audio. Only the first
`ERROR_BODY_BYTES` are read, so the JSON is often cut; the message is still pulled out of
the string it starts. What comes out is for the log and for classifying the failure, never
for a chat: a user reads our own sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

ERROR_BODY_BYTES = 65536
"""How much of an error answer is read: enough for the message any server writes first."""
MESSAGE_CHARS = 300
"""How much of a server's message is kept for the log."""
_MESSAGE_KEYS = (b"message", b"msg", b"detail", b"error")
_STRING_START = re.compile(rb'"(%s)"\s*:\s*"' % b"|".join(_MESSAGE_KEYS))
_CODE = re.compile(rb'"code"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)')


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """What an error answer says: its message (cut to `MESSAGE_CHARS`) and code, if any."""

    message: str
    code: object = None


def parse_error_body(raw: bytes, *, status: object) -> ErrorBody:
    """The message and code of an error body: whole JSON, JSON cut short, or plain text."""
    try:
        body: object = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if body is not None:
        message = error_message(body, "")
        if message:
            return ErrorBody(shorten(message), error_code(body))
    cut = _message_in_cut_json(raw)
    if cut is not None:
        return ErrorBody(shorten(cut), _code_in_cut_json(raw))
    text = raw.decode("utf-8", errors="replace").strip()
    return ErrorBody(shorten(f"Error code: {status}" + (f" - {text}" if text else "")))


def error_message(body: object, fallback: str) -> str:
    """The server's own sentence from an OpenAI-style error body (`{"error": {"message"}}`),
    or FastAPI's validation list (`{"detail": [{"msg": ...}]}`)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            for key in ("message", "msg", "detail"):
                value = inner.get(key)
                if isinstance(value, str) and value:
                    return value
                if isinstance(value, list) and value:
                    return "; ".join(error_message(item, str(item)) for item in value[:3])
        if isinstance(inner, str):
            return inner
    return fallback


def error_code(body: object) -> object:
    """The `code` of an OpenAI-style error body (a string such as `context_length_exceeded`,
    or a number), if it has one."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get("code")
    return None


def shorten(message: str) -> str:
    """A message on one line, cut to `MESSAGE_CHARS` and marked where it was cut."""
    message = " ".join(message.split())
    return message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 1] + "…"


def _message_in_cut_json(raw: bytes) -> str | None:
    """The first message-like string of a JSON text that may end anywhere, even mid-string."""
    found = _STRING_START.search(raw)
    if found is None:
        return None
    start = found.end()
    closing = _closing_quote(raw, start)
    piece = raw[start:closing] if closing is not None else _whole_escapes(raw[start:])
    try:
        decoded = orjson.loads(b'"' + piece + b'"')
    except orjson.JSONDecodeError:
        return piece.decode("utf-8", errors="replace")
    return decoded if isinstance(decoded, str) else None


def _closing_quote(raw: bytes, start: int) -> int | None:
    """Where the JSON string starting at `start` ends, or None if the text is cut before."""
    index = start
    while index < len(raw):
        byte = raw[index]
        if byte == 0x5C:  # a backslash: the next character is escaped
            index += 2
            continue
        if byte == 0x22:
            return index
        index += 1
    return None


def _whole_escapes(piece: bytes) -> bytes:
    """`piece` without an escape sequence or a UTF-8 character cut at its end."""
    escape = piece.rfind(b"\\")
    if escape != -1:
        run = escape + 1 - len(piece[: escape + 1].rstrip(b"\\"))  # backslashes ending there
        tail = piece[escape + 1 :]
        if run % 2 == 1 and (not tail or (tail[:1] == b"u" and len(tail) < 5)):
            piece = piece[:escape]
    return piece.decode("utf-8", errors="ignore").encode()


def _code_in_cut_json(raw: bytes) -> object:
    found = _CODE.search(raw)
    if found is None:
        return None
    try:
        return orjson.loads(found.group(1))
    except orjson.JSONDecodeError:
        return None
