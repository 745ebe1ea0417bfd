"""A local OpenAI-compatible chat-completions server that streams like vLLM and fails on demand.

Usage::

    async with FakeOpenAIServer() as srv:
        srv.base_url            # "http://127.0.0.1:<port>/v1", for AsyncOpenAI(base_url=...)
        srv.answer = "Hello!"   # streamed in pieces of `srv.chunk_size` characters
        srv.reply = lambda body: "..."  # or an answer computed from each request's body
        srv.chunk_delay = 0.01  # seconds between two content chunks
        srv.first_chunk_delay = 2.0  # seconds before the first one (a model thinking)
        srv.fail_next("429")    # the next chat request fails (see `FAILURES`)
        srv.fail_next("stall", after=2)  # two content chunks, then silence
        srv.fail_next("status", status=400, message="...")  # any error answer
        srv.pause_after = 1     # hold every stream after one chunk until `srv.resume()`
        srv.text_only = True    # refuse images/audio with 400, as Ollama does (with the
                                # `llama-cpp-python` shape: its recorded 500 or empty 200)
        srv.api_key = "sk-..."  # demand `Authorization: Bearer sk-...`
        srv.down = True         # every request gets a gateway's 502 until set back to False
        srv.requests[-1].json   # what the client sent (also `.headers`, `.query`)
        srv.max_streams = 4     # serve at most 4 answers at once; later ones wait (vLLM's batch)
        srv.window = 1200       # a context window, counted with a real tokenizer (o200k)
        srv.shape = "llama-cpp-python"  # how it tells an overflow: see `SHAPES`
        srv.fail_next("empty")  # HTTP 200 and an empty body, as llama.cpp answers a bad prompt
        srv.fail_next("image-llama")  # llama.cpp's recorded answer to an image part
        srv.fail_next("no-end", after=2)  # two chunks, then the end without [DONE]
        srv.fail_next("length", after=3)  # three chunks, then finish_reason "length" (max_tokens)
        await srv.kill()        # die at once: listening stops, open streams are cut
        await srv.start()       # come back on the same port (`FakeOpenAIServer(port=...)` too)

Models are those of a vLLM serving Phi-4 with its LoRA adapters (`srv.models`); a request
for any other model draws vLLM's 404.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from tests.fakes import server_shapes
from tests.fakes.context_window import SHAPES, overflow_refusal, window_props

DEFAULT_MODEL = "microsoft/Phi-4-multimodal-instruct"
FAILURES = (
    "500",
    "503",
    "429",
    "401",
    "404",
    "status",
    "empty",
    "context-vllm",
    "context-github",
    "context-llama",
    "image-llama",
    "audio-llama",
    "error-event",
    "stall",
    "drop",
    "no-end",
    "length",
)
"""`status` answers `fail_next(..., status=, message=)`; `empty` is an HTTP 200 with no body
(llama.cpp's server on a streamed prompt it cannot serve); `context-*` and `*-llama` are
the real servers' answers recorded in `server_shapes`; the last five happen mid-stream:
`no-end` closes the stream cleanly without a finish reason or `[DONE]`, `length` ends it
with `finish_reason: "length"` as a server's length limit does."""


@dataclass(frozen=True)
class _Failure:
    kind: str = ""
    after: int = 1
    status: int = 400
    message: str = "Bad request"


@dataclass
class RecordedRequest:
    """One request as the server saw it; `disconnected` is set if the client left mid-stream."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    json: Any = None
    chunks_sent: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


def _error(status: int, message: str, kind: str, code: object = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code or status}}
    return web.json_response(body, status=status)


def _has_media(body: dict[str, Any]) -> set[str]:
    kinds: set[str] = set()
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if part.get("type") == "image_url":
                    kinds.add("images")
                elif part.get("type") == "input_audio":
                    kinds.add("audio")
    return kinds


class FakeOpenAIServer:
    """aiohttp on 127.0.0.1 (random port) speaking `/v1/chat/completions` and `/v1/models`."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.answer = "Hello from the fake Phi-4."
        self.reply: Callable[[dict[str, Any]], str] | None = None
        self.chunk_size = 4
        self.chunk_delay = 0.0
        self.first_chunk_delay = 0.0
        self.models = [DEFAULT_MODEL, "vision", "speech"]
        self.text_only = False
        self.api_key: str | None = None
        self.down = False
        self.pause_after: int | None = None
        self.keepalive: float | None = None
        self.requests: list[RecordedRequest] = []
        self.streaming_now = 0
        self.most_streaming_at_once = 0
        self.max_streams: int | None = None
        self.window: int | None = None
        self.shape = "vllm"
        self.states_window = True
        self.token_scale = 1.0
        """Tokens counted per o200k token: above 1 for a tokenizer with a smaller vocabulary."""
        """Whether a vLLM-shaped server lists `max_model_len` (older versions do not)."""
        self.prompt_tokens: list[int] = []
        """The prompt size of each chat request, as this server counted it."""
        self._slots: asyncio.Semaphore | None = None
        self._open: set[asyncio.Transport] = set()
        self._failures: list[_Failure] = []
        self._resume = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def fail_next(
        self,
        kind: str,
        *,
        times: int = 1,
        after: int = 1,
        status: int = 400,
        message: str = "Bad request",
    ) -> None:
        """Fail the next `times` chat requests; mid-stream kinds fail after `after` chunks."""
        if kind not in FAILURES:
            raise ValueError(f"unknown failure {kind!r}; choose from {FAILURES}")
        self._failures.extend([_Failure(kind, after, status, message)] * times)

    def resume(self) -> None:
        """Let streams held by `pause_after` continue."""
        self._resume.set()

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def answer_for(self, body: dict[str, Any]) -> str:
        """`reply(body)` when set, else the fixed `answer`."""
        return self.reply(body) if self.reply is not None else self.answer

    def pieces(self, answer: str | None = None) -> list[str]:
        """The answer as the content deltas it is streamed in."""
        size, text = self.chunk_size, self.answer if answer is None else answer
        return [text[i : i + size] for i in range(0, len(text), size)]

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def start(self) -> None:
        """Listen on 127.0.0.1: a random port the first time, the same one after `kill()`."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/props", self._props)
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    async def kill(self) -> None:
        """Die like a crashed replica: stop listening and cut every open connection at once."""
        self._closing.set()
        for transport in list(self._open):
            transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()
        self._resume.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _record(self, request: web.Request) -> RecordedRequest:
        recorded = RecordedRequest(
            request.method, request.path, dict(request.headers), dict(request.query)
        )
        if request.transport is not None:
            self._open.add(request.transport)  # for `kill()`; keep-alive reuses them
        if request.can_read_body:
            recorded.json = await request.json()
        self.requests.append(recorded)
        return recorded

    def _unauthorised(self, request: web.Request) -> web.Response | None:
        if self.down:  # the model server is gone; the reverse proxy in front of it says so
            return web.Response(status=502, text="502 Bad Gateway", content_type="text/plain")
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "401")
        return None

    async def _models(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        refused = self._unauthorised(request)
        if refused:
            return refused
        now = int(time.time())
        data: list[dict[str, object]] = [
            {"id": m, "object": "model", "created": now, "owned_by": "vllm"} for m in self.models
        ]
        if self.window is not None and self.shape == "vllm" and self.states_window:
            for entry in data:
                entry["max_model_len"] = self.window
        return web.json_response({"object": "list", "data": data})

    async def _props(self, request: web.Request) -> web.StreamResponse:
        """llama.cpp's C++ server states its window here; the others have no such page."""
        await self._record(request)
        props = window_props(self.shape, self.window)
        if props is None:
            return web.json_response({"detail": "Not Found"}, status=404)
        return web.json_response(props)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        body: dict[str, Any] = recorded.json
        failure = self._failures.pop(0) if self._failures else _Failure()
        refused = self._unauthorised(request) or self._refusal(failure, body)
        if refused:
            return refused
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; choose from {SHAPES}")
        overflow = overflow_refusal(
            self.shape, self.window, body, self.prompt_tokens, self.token_scale
        )
        if overflow is not None:
            return overflow
        if not body.get("stream"):
            return self._complete(body)
        return await self._stream(request, recorded, body, failure.kind, failure.after)

    def _refusal(self, failure: _Failure, body: dict[str, Any]) -> web.Response | None:
        model, kind = body.get("model"), failure.kind
        if kind == "status":
            return _error(failure.status, failure.message, "BadRequestError")
        if kind == "401":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "401")
        if kind == "404" or model not in self.models:
            return _error(404, f"The model `{model}` does not exist.", "NotFoundError")
        if kind in ("500", "503", "429"):
            text = {"500": "Internal server error", "503": "Service unavailable"}
            return _error(int(kind), text.get(kind, "Rate limit reached"), "server_error")
        streamed = bool(body.get("stream"))
        if kind == "empty":
            return server_shapes.empty_stream()
        if kind == "context-vllm":
            return server_shapes.vllm_overflow(self.window or 1200, 1500, None)
        if kind == "context-github":
            return server_shapes.github_overflow(self.window or 8000)
        if kind in ("context-llama", "image-llama", "audio-llama"):
            return server_shapes.llama_answer(kind, body, streamed=streamed)
        media = _has_media(body)
        if self.text_only and media and self.shape == "llama-cpp-python":
            which = "audio-llama" if "audio" in media else "image-llama"
            return server_shapes.llama_answer(which, body, streamed=streamed)
        if self.text_only and media:
            return _error(
                400, f"model does not support {sorted(media)[-1]}", "invalid_request_error"
            )
        return None

    def _complete(self, body: dict[str, Any]) -> web.Response:
        message = {"role": "assistant", "content": self.answer_for(body)}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [choice],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )

    async def _stream(
        self, request: web.Request, recorded: RecordedRequest, body: dict, kind: str, after: int
    ) -> web.StreamResponse:
        if self.max_streams is not None:
            self._slots = self._slots or asyncio.Semaphore(self.max_streams)
            async with self._slots:
                return await self._stream_now(request, recorded, body, kind, after)
        return await self._stream_now(request, recorded, body, kind, after)

    async def _stream_now(
        self, request: web.Request, recorded: RecordedRequest, body: dict, kind: str, after: int
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        ident, created, model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), body["model"]
        usage_wanted = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            out = {"id": ident, "object": "chat.completion.chunk", "created": created}
            out |= {"model": model, "choices": [choice]}
            return out | ({"usage": None} if usage_wanted else {})

        self.streaming_now += 1
        self.most_streaming_at_once = max(self.most_streaming_at_once, self.streaming_now)
        try:
            if self.first_chunk_delay:
                await asyncio.sleep(self.first_chunk_delay)  # the model's time to first token
            await self._send(response, chunk({"role": "assistant", "content": ""}))
            finish = "stop"
            for number, piece in enumerate(self.pieces(self.answer_for(body))):
                if number and self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                if kind in ("length", "no-end") and number == after:
                    finish = "length" if kind == "length" else finish  # max_tokens ends it
                    break
                if kind and number == after:
                    return await self._fail_mid_stream(request, response, kind)
                if self.pause_after is not None and number == self.pause_after:
                    await self._hold(request, response, self._resume)
                await self._send(response, chunk({"content": piece}))
                recorded.chunks_sent += 1
            if kind == "no-end":
                return response  # the stream ends without a finish reason or [DONE]
            await self._send(response, chunk({}, finish))
            if usage_wanted:
                usage = {"prompt_tokens": 10, "completion_tokens": recorded.chunks_sent}
                usage["total_tokens"] = 10 + recorded.chunks_sent
                final = {"id": ident, "object": "chat.completion.chunk", "created": created}
                await self._send(response, final | {"model": model, "choices": [], "usage": usage})
            await response.write(b"data: [DONE]\n\n")
        except ConnectionError:
            recorded.disconnected.set()
        finally:
            self.streaming_now -= 1
        return response

    async def _send(self, response: web.StreamResponse, payload: dict[str, Any]) -> None:
        await response.write(f"data: {json.dumps(payload)}\n\n".encode())

    async def _hold(
        self, request: web.Request, response: web.StreamResponse, until: asyncio.Event
    ) -> None:
        """Wait for `until` (or shutdown), sending SSE comments meanwhile if `keepalive` is set.

        A client that hangs up while held is noticed (within 50 ms) as a `ConnectionError`,
        as a real server notices it on its next write.
        """
        last_keepalive = time.monotonic()
        while not until.is_set() and not self._closing.is_set():
            waiter = asyncio.ensure_future(until.wait())
            closing = asyncio.ensure_future(self._closing.wait())
            await asyncio.wait({waiter, closing}, timeout=0.05, return_when="FIRST_COMPLETED")
            waiter.cancel()
            closing.cancel()
            if request.transport is None or request.transport.is_closing():
                raise ConnectionError("the client went away")
            due = self.keepalive and time.monotonic() - last_keepalive >= self.keepalive
            if due and not until.is_set():
                await response.write(b": keepalive\n\n")
                last_keepalive = time.monotonic()

    async def _fail_mid_stream(
        self, request: web.Request, response: web.StreamResponse, kind: str
    ) -> web.StreamResponse:
        if kind == "error-event":
            error = {"message": "CUDA out of memory", "type": "InternalServerError", "code": 500}
            await self._send(response, {"error": error})
            await response.write(b"data: [DONE]\n\n")
        elif kind == "stall":
            await self._hold(request, response, self._closing)
        elif kind == "drop" and request.transport is not None:
            request.transport.close()
        return response
