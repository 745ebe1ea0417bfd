"""A context window for the fake OpenAI server, told the way real servers tell it.

Prompts are counted with a real tokenizer of Phi-4's family (o200k, via `quicktok`), plus
the chat template's markers, so the bot's estimate is tested against an independent count.
How a server says the prompt is too long depends on which server it is (`SHAPES`):

- `vllm`: states `max_model_len` in `/v1/models`; an over-long prompt gets 400 before any
  stream, its message naming the window and the tokens requested.
- `llama-cpp-python`: states nothing; a *streamed* over-long prompt gets HTTP 200 and an
  empty body (the error is only in its log), an unstreamed one 400 `context_length_exceeded`.
- `llama-server`: llama.cpp's C++ server; states `n_ctx` in `/props`, refuses with 400
  `exceed_context_size_error`.
"""

from __future__ import annotations

from typing import Any

import quicktok
from aiohttp import web

SHAPES = ("vllm", "llama-cpp-python", "llama-server")
MESSAGE_TOKENS = 3  # <|user|> ... <|end|> and the role's newline
IMAGE_TOKENS = 1000
AUDIO_TOKENS = 400

_ENCODING = quicktok.get_encoding("o200k_base")


def count_prompt(body: dict[str, Any]) -> int:
    """The prompt's tokens as the model's tokenizer and template make them."""
    total = 1  # <|assistant|>
    for message in body.get("messages", []):
        total += MESSAGE_TOKENS
        content = message.get("content")
        if isinstance(content, str):
            total += len(_ENCODING.encode(content))
            continue
        for part in content or ():
            kind = part.get("type")
            if kind == "text":
                total += len(_ENCODING.encode(part.get("text", "")))
            elif kind == "image_url":
                total += IMAGE_TOKENS
            elif kind == "input_audio":
                total += AUDIO_TOKENS
    return total


def window_props(shape: str, window: int | None) -> dict[str, Any] | None:
    """llama.cpp's `/props` page (abridged), or None where the server has no such page."""
    if shape != "llama-server" or window is None:
        return None
    return {
        "default_generation_settings": {"n_ctx": window, "n_predict": -1},
        "total_slots": 1,
        "chat_template": "{% for message in messages %}...{% endfor %}",
    }


def overflow_refusal(
    shape: str, window: int | None, body: dict[str, Any], counted: list[int], scale: float = 1.0
) -> web.StreamResponse | None:
    """The server's answer to a prompt over its window, or None when the prompt fits.

    Each prompt's count is appended to `counted`, so tests can see what the server saw.
    `scale` stands for a tokenizer with a smaller vocabulary (the tiny llama.cpp test model
    spends three to six tokens where Phi-4 spends one).
    """
    prompt = int(count_prompt(body) * scale)
    counted.append(prompt)
    wanted = prompt + int(body.get("max_tokens") or 0)
    if window is None or (prompt < window and wanted <= window):
        return None
    if shape == "vllm":
        message = (
            f"This model's maximum context length is {window} tokens. However, you requested "
            f"{wanted} tokens ({prompt} in the messages, {wanted - prompt} in the completion). "
            "Please reduce the length of the messages or completion."
        )
        error = {"message": message, "type": "BadRequestError", "param": None, "code": 400}
        return web.json_response({"object": "error"} | error, status=400)
    if shape == "llama-server":
        error = {
            "code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": prompt,
            "n_ctx": window,
        }
        return web.json_response({"error": error}, status=400)
    if body.get("stream"):
        return EmptyStream()
    message = (
        f"This model's maximum context length is {window} tokens. However, you requested "
        f"{prompt} tokens ({prompt} in the messages, None in the completion). "
        "Please reduce the length of the messages or completion."
    )
    error = {
        "message": message,
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    return web.json_response({"error": error}, status=400)


class EmptyStream(web.StreamResponse):
    """HTTP 200, event-stream headers, then the end: no event at all."""

    def __init__(self) -> None:
        super().__init__(status=200, headers={"Content-Type": "text/event-stream"})

    async def prepare(self, request: web.BaseRequest) -> Any:
        writer = await super().prepare(request)
        await self.write_eof()
        return writer
