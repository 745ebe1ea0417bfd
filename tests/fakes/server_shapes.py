"""How real OpenAI-compatible servers answer what they cannot serve, for the fake to copy.

llama.cpp's server (`llama-cpp-python`'s `python -m llama_cpp.server`) answers are replayed
from the recordings in `tests/fixtures/model_servers/` (made by `tests/real/llama/record.py`
against the real server), so the fake fails byte for byte as it does: an empty HTTP 200 for
a streamed prompt longer than its window or an image its chat template cannot render, a 500
validation dump repeating the request's base64 audio, a 400 `context_length_exceeded` for a
non-streamed prompt that does not fit. vLLM's 400 for a prompt longer than `max_model_len`
(v0.10's wording) and GitHub Models' 413 `tokens_limit_reached` (as its users have
reported it) are written out here; a context window the fake counts itself is
`context_window.py`'s.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

FIXTURES = Path(__file__).parent.parent / "fixtures" / "model_servers"
AUDIO_PLACEHOLDER = "<input_audio.data>"
"""Where a recording held the request's base64 audio; the fake puts its own request's back."""


@cache
def recording(name: str) -> dict[str, Any]:
    """One recorded answer: `status`, `headers`, `body` (and how it was provoked)."""
    loaded = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def replay(name: str, body: dict[str, Any] | None = None) -> web.Response:
    """A recorded answer as the server sent it, its audio placeholder filled from `body`."""
    recorded = recording(name)
    text: str = recorded["body"]
    if AUDIO_PLACEHOLDER in text and body is not None:
        text = text.replace(AUDIO_PLACEHOLDER, _audio_data(body))
    headers = {k: v for k, v in recorded["headers"].items() if k.lower() == "content-type"}
    return web.Response(status=recorded["status"], body=text.encode(), headers=headers)


def empty_stream() -> web.Response:
    """llama.cpp's server on a streamed request it fails to start: 200, headers, no event."""
    return replay("llama_cpp_stream_overflow")


def llama_answer(kind: str, body: dict[str, Any], *, streamed: bool) -> web.Response:
    """llama.cpp's answer to `context-llama`, `image-llama` or `audio-llama`."""
    if kind == "audio-llama":  # refused by request validation, before any stream
        return replay("llama_cpp_audio_part", body)
    if streamed:
        return empty_stream()
    return replay("llama_cpp_overflow" if kind == "context-llama" else "llama_cpp_image_part")


def vllm_overflow(window: int, prompt_tokens: int, max_tokens: int | None) -> web.Response:
    """vLLM's 400 for a request that does not fit its `max_model_len` (v0.10 wording)."""
    if max_tokens is None or prompt_tokens >= window:
        message = (
            f"This model's maximum context length is {window} tokens. However, your request "
            f"has {prompt_tokens} input tokens. Please reduce the length of the input messages."
        )
    else:
        message = (
            f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's "
            f"maximum context length is {window} tokens and your request has {prompt_tokens} "
            f"input tokens ({max_tokens} > {window} - {prompt_tokens})."
        )
    error = {"message": message, "type": "BadRequestError", "param": None, "code": 400}
    return web.json_response({"error": error}, status=400)


def github_overflow(window: int) -> web.Response:
    """GitHub Models' 413 for a request over its per-request token limit."""
    message = (
        f"Request body too large for phi-4-multimodal-instruct model. Max size: {window} tokens."
    )
    error = {"code": "tokens_limit_reached", "message": message, "details": message}
    return web.json_response({"error": error}, status=413)


def _audio_data(body: dict[str, Any]) -> str:
    for message in body.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else ():
            if part.get("type") == "input_audio":
                return str((part.get("input_audio") or {}).get("data") or "")
    return ""
