"""How large an OpenAI-compatible server's context window is, in the server's own words.

vLLM lists `max_model_len` beside each model in `GET /v1/models`; llama.cpp's server reports
`n_ctx` in `GET /props` at its root. Neither is an error when absent: many servers say
nothing, and the configured `PHI4_CONTEXT_TOKENS` stands. When a server refuses a prompt as
too long its message usually names both numbers (vLLM and llama-cpp-python alike: "This
model's maximum context length is 512 tokens. However, you requested 3204 tokens"), which is
the other way the window is learned.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from bot.phi4.errors import ContextOverflow

log = logging.getLogger(__name__)

_WINDOW_WORDS = (
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),
    re.compile(r"context window of (\d+)", re.IGNORECASE),
    re.compile(r"n_ctx(?:_slot)?\s*[=:]?\s*(\d+)", re.IGNORECASE),
    re.compile(r"max size: (\d+) tokens", re.IGNORECASE),  # GitHub Models' 413
)
_REQUESTED_WORDS = (
    re.compile(r"you requested (\d+) tokens", re.IGNORECASE),
    re.compile(r"request has (\d+) input tokens", re.IGNORECASE),
    re.compile(r"(\d+) tokens in the messages", re.IGNORECASE),
    re.compile(r"requested tokens \((\d+)\)", re.IGNORECASE),
    re.compile(r"(\d+) tokens? (?:from|in) the input", re.IGNORECASE),
)
_LENGTH_CODES = frozenset(
    {"context_length_exceeded", "exceed_context_size_error", "tokens_limit_reached"}
)


def _first_number(patterns: tuple[re.Pattern[str], ...], text: str) -> int | None:
    for pattern in patterns:
        found = pattern.search(text)
        if found:
            return int(found.group(1))
    return None


def overflow_from(code: object, message: str, *, detail: str) -> ContextOverflow | None:
    """A `ContextOverflow` when an error says the prompt exceeds the window, else None."""
    lowered = message.lower()
    said = (
        code in _LENGTH_CODES
        or "context length" in lowered
        or "context window" in lowered
        or "context size" in lowered
        or "maximum context" in lowered
    )
    if not said:
        return None
    return ContextOverflow(
        detail,
        window=_first_number(_WINDOW_WORDS, message),
        requested=_first_number(_REQUESTED_WORDS, message),
    )


def server_root(base_url: str) -> str:
    """`http://host:8080/v1` → `http://host:8080`: llama.cpp serves `/props` at its root."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit(parts._replace(path=path, query="")).rstrip("/")


def window_in_models(page: object, model: str) -> int | None:
    """`max_model_len` of `model` (or of the only model listed) in a `/models` page."""
    data = page.get("data") if isinstance(page, Mapping) else None
    entries = [m for m in data or () if isinstance(m, Mapping)]
    for entry in entries:
        if entry.get("id") == model or len(entries) == 1:
            value = entry.get("max_model_len")
            if isinstance(value, int) and value > 0:
                return value
    return None


def window_in_props(props: object) -> int | None:
    """`n_ctx` from llama.cpp's `/props` (inside `default_generation_settings`, or on top)."""
    if not isinstance(props, Mapping):
        return None
    settings = props.get("default_generation_settings")
    for source in (settings, props):
        if isinstance(source, Mapping):
            value = source.get("n_ctx")
            if isinstance(value, int) and value > 0:
                return value
    return None


async def ask_window(
    session: aiohttp.ClientSession,
    *,
    root: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    model: str,
    timeout: float,
) -> int | None:
    """The window the server states, from `/models` and then `/props`; None if it says
    nothing (or cannot be asked now: the next request simply asks again)."""
    for url, read in (
        (f"{root}/models", lambda page: window_in_models(page, model)),
        (f"{server_root(root)}/props", window_in_props),
    ):
        try:
            async with asyncio.timeout(timeout):
                async with session.get(url, params=query, headers=headers) as response:
                    if response.status != 200:
                        continue
                    window = read(orjson.loads(await response.read()))
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.debug("could not read the context window at %s: %s", url, exc)
            continue
        if window is not None:
            return window
    return None


async def ask_overflow(
    session: aiohttp.ClientSession,
    *,
    url: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: dict[str, object],
    timeout: float,
) -> ContextOverflow | None:
    """Send the prompt once more, not streamed and for one token, to hear whether it is too
    long: llama-cpp-python answers an over-long *streamed* prompt with an empty 200, but an
    unstreamed one with 400 naming its window. None when the prompt fits (or no answer)."""
    request = body | {"stream": False, "max_tokens": 1}
    request.pop("stream_options", None)
    raw = b""
    for attempt in (1, 2):
        try:
            async with asyncio.timeout(timeout):
                async with session.post(
                    url, data=orjson.dumps(request), params=query, headers=headers
                ) as response:
                    if response.status == 200:
                        return None
                    raw = await response.content.read(65536)
            break
        except aiohttp.ServerDisconnectedError as exc:
            # llama.cpp's server drops the kept-alive connection after the empty answer
            # this follows; the second attempt takes a fresh one
            log.debug("asking %s whether the prompt fits, attempt %d: %s", url, attempt, exc)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.debug("could not ask %s whether the prompt fits: %s", url, exc)
            return None
    if not raw:
        return None
    try:
        error = orjson.loads(raw).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, Mapping):
        error = {"message": str(error)}
    message = str(error.get("message") or raw[:500].decode("utf-8", "replace"))
    return overflow_from(error.get("code"), message, detail=f"{url} answered: {message[:300]}")
