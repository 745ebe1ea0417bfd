"""A local Gradio Space that chats like the Phi-4-multimodal demo and fails on demand.

Usage::

    async with FakeSpace() as space:
        space.url                   # "http://127.0.0.1:<port>", the Space root (PHI4_SPACE_URL)
        space.hub_url               # the same server's fake hub, for HF_ENDPOINT
        space.answer = "Hello!"     # streamed as Gradio `append` diffs of `space.chunk_size` chars
        space.reply = fn            # or compute the answer from the `SpaceRequest`
        space.chunk_delay = 0.05    # seconds between two diffs
        space.queue_ahead = 2       # `estimation` events (rank 2, 1, 0) before processing starts
        space.version = "6.31.0"    # speak Gradio 6: content as lists of parts (default 5.50.0)
        space.fail_next("quota")    # the next turn fails (see `FAILURES`)
        space.fail_next("sleeping", times=10)  # the next ten requests meet the sleeping page
        space.pause_after = 1       # hold every answer after one chunk until `space.resume()`
        space.requests[-1].history  # the chatbot history `/queue/join` received (`.files`, ...)
        space.requests[-1].file_counts()  # how often each uploaded file reached the answer
        space.uploads               # every uploaded file: `.data`, `.filename`, `.path`, ...
        space.forget_uploads()      # the Space's upload cache is cleaned: old paths are refused
        space.cancels, space.jwt_requests, space.seen  # /cancel bodies, hub calls, all requests

Run standalone for benchmarks: ``python -m tests.fakes.space --port 7860 --answer "Hi"``.
The API routes, message shapes and the order of SSE messages are those of a real Gradio
queue (PROTOCOLS §1), checked against Gradio 5.50 and 6.31: a rank-0 `estimation` even when
idle, a first `process_generating` carrying the full chatbot value and later ones diffs, and
`"error": null` for failures when the Space does not set `show_error` (as for content in the
shape the version refuses: Gradio 5 takes strings, Gradio 6 lists of parts). The tests in
`tests/real/gradio/` run the real thing; this fake injects the faults a real server cannot.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import BodyPartReader, web

from tests.fakes.space_events import EventStream, SpaceRequest, send_message

FAILURES = (
    "quota",  # process_completed, success false, ZeroGPU's quota sentence
    "error",  # process_completed, success false, an ordinary error shown with its message
    "crash",  # after `after` chunks, success false with "error": null (show_error off)
    "unexpected_error",  # Gradio's unexpected_error message
    "join_500",  # /queue/join answers 500
    "queue_full",  # /queue/join answers Gradio's 503 "Queue is full."
    "data_500",  # /queue/data answers 500
    "sleeping",  # every path answers 503 with Hugging Face's sleeping page, once
    "paused",  # the same for a Space paused by its owner
    "missing",  # every path answers 404 with Hugging Face's not-found page, once
    "private",  # every path answers 401, as a private Space does without a token, once
    "broken",  # the connection is dropped after `after` chunks
    "truncated",  # the stream ends cleanly after `after` chunks, without process_completed
    "stall",  # heartbeats only after `after` chunks, for `stall_seconds`, then the rest
    "jwt",  # the hub refuses the next ZeroGPU token request
)
STREAM_FAILURES = (
    "quota",
    "error",
    "crash",
    "unexpected_error",
    "data_500",
    "broken",
    "truncated",
    "stall",
)
FAKE_VERSION = "5.50.0"
_DOWN_PAGES = {
    "sleeping": (503, "<html><body><h1>This Space is sleeping</h1></body></html>"),
    "paused": (503, "<html><body><h1>This Space is paused</h1></body></html>"),
    "missing": (404, "<html><body><h1>404</h1><p>Sorry, we can't find the page</p></body></html>"),
    "private": (401, "<html><body><h1>401</h1><p>Unauthorized</p></body></html>"),
}
"""Failures that answer every request (but the hub's) with Hugging Face's page for that state."""


@dataclass
class Upload:
    """One file received by `/gradio_api/upload`."""

    upload_id: str
    filename: str
    content_type: str
    data: bytes
    path: str


@dataclass
class Seen:
    """Any request at all, for checking headers."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)


class FakeSpace:
    """aiohttp on 127.0.0.1 (random port) serving a Gradio chat Space and a hub JWT endpoint."""

    def __init__(
        self,
        *,
        add_fn: int = 10,
        answer_fn: int = 11,
        trigger_id: int = 8,
        space_id: str = "fake-owner/fake-phi4",
        port: int = 0,
    ) -> None:
        self.add_fn, self.answer_fn, self.trigger_id = add_fn, answer_fn, trigger_id
        self.space_id = space_id
        self.version = FAKE_VERSION
        self.answer = "Hello from the fake Phi-4 Space."
        self.reply: Callable[[SpaceRequest], str] | None = None
        self.chunk_size = 4
        self.chunk_delay = 0.0
        self.queue_ahead = 0
        self.queue_delay = 0.0
        self.heartbeat_interval = 15.0
        self.stall_seconds = 30.0
        self.pause_after: int | None = None
        self.requests: list[SpaceRequest] = []
        self.uploads: list[Upload] = []
        self.forgotten: set[str] = set()
        self.cancels: list[dict[str, Any]] = []
        self.jwt_requests: list[Seen] = []
        self.seen: list[Seen] = []
        self._failures: list[tuple[str, int]] = []
        self._predicts: dict[str, dict[str, Any]] = {}
        self.resumed = asyncio.Event()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port = port
        self.url = ""

    @property
    def hub_url(self) -> str:
        return self.url

    def fail_next(self, kind: str, *, after: int = 1, times: int = 1) -> None:
        """Make the next `times` turns (or requests, for a down page) fail as `kind`.

        Mid-stream kinds fail after `after` chunks.
        """
        if kind not in FAILURES:
            raise ValueError(f"unknown failure {kind!r}; choose from {FAILURES}")
        self._failures.extend([(kind, after)] * times)

    def resume(self) -> None:
        """Let answers held by `pause_after` continue."""
        self.resumed.set()

    def pieces(self, answer: str) -> list[str]:
        """The answer as the pieces its `append` diffs carry (override for other shapes)."""
        size = self.chunk_size
        return [answer[i : i + size] for i in range(0, len(answer), size)]

    def config(self) -> dict[str, Any]:
        """The `/config` answer: a chatbot, a multimodal textbox and the chat dependencies."""
        chatbot, turn_files, box = self.trigger_id - 3, self.trigger_id - 2, self.trigger_id
        filler = {"targets": [], "inputs": [], "outputs": [], "queue": False, "types": {}}
        deps: list[dict[str, Any]] = [{"id": i, **filler} for i in range(self.answer_fn + 2)]
        deps[self.add_fn] = {
            **filler,
            "id": self.add_fn,
            "targets": [[box, "submit"]],
            "inputs": [chatbot, box, turn_files],
            "outputs": [chatbot, box, turn_files],
        }
        deps[self.answer_fn] = {
            "id": self.answer_fn,
            "targets": [[None, "then"]],
            "inputs": [chatbot, turn_files],
            "outputs": [chatbot],
            "queue": True,
            "trigger_after": self.add_fn,
            "types": {"generator": True, "cancel": False},
        }
        components = [
            {"id": chatbot, "type": "chatbot", "props": {"type": "messages"}},
            {"id": turn_files, "type": "chatbot", "props": {"type": "messages", "visible": False}},
            {"id": box, "type": "multimodaltextbox", "props": {}},
        ]
        return {
            "version": self.version,
            "mode": "blocks",
            "protocol": "sse_v3",
            "api_prefix": "/gradio_api",
            "space_id": self.space_id,
            "components": components,
            "dependencies": deps,
        }

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `condition()` holds; it is checked whenever the Space's records change."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(condition)

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._middleware])
        app.router.add_get("/config", self._config)
        app.router.add_post("/gradio_api/upload", self._upload)
        app.router.add_get("/gradio_api/file={path:.+}", self._file)
        app.router.add_post("/gradio_api/run/predict", self._predict)
        app.router.add_post("/gradio_api/queue/join", self._join)
        app.router.add_get("/gradio_api/queue/data", self._data)
        app.router.add_post("/gradio_api/cancel", self._cancel)
        app.router.add_get("/api/spaces/{owner}/{name}/jwt", self._jwt)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self._port).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.resumed.set()
        for request in self.requests:
            request.cancelled.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.seen.append(
            Seen(request.method, request.path, dict(request.headers), dict(request.query))
        )
        down, _ = self._take(tuple(_DOWN_PAGES), request.path.startswith("/api/spaces/"))
        if down:
            status, page = _DOWN_PAGES[down]
            return web.Response(status=status, text=page, content_type="text/html")
        try:
            return await handler(request)
        finally:
            await self.notify()

    def _take(self, kinds: tuple[str, ...], skip: bool = False) -> tuple[str, int]:
        """Consume the first pending failure of one of `kinds` (the rest wait their turn)."""
        for position, (kind, after) in enumerate(self._failures):
            if kind in kinds and not skip:
                del self._failures[position]
                return kind, after
        return "", 1

    async def notify(self) -> None:
        """Wake `wait_for` callers: a record changed."""
        async with self._changed:
            self._changed.notify_all()

    async def _config(self, request: web.Request) -> web.Response:
        return web.json_response(self.config())

    async def _upload(self, request: web.Request) -> web.Response:
        upload_id = request.query.get("upload_id", "")
        paths: list[str] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name != "files" or not part.filename:
                return web.json_response(
                    {"detail": "expected file parts named 'files'"}, status=422
                )
            data = await part.read()
            path = f"/tmp/gradio/{hashlib.sha256(data).hexdigest()}/{part.filename}"
            self.forgotten.discard(path)
            content_type = part.headers.get("Content-Type", "")
            self.uploads.append(Upload(upload_id, part.filename, content_type, bytes(data), path))
            paths.append(path)
        return web.json_response(paths)

    def forget_uploads(self) -> None:
        """Clean the upload cache, as a restarted Space does: old paths are refused from now on."""
        self.forgotten.update(u.path for u in self.uploads)

    async def _file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        for upload in reversed(self.uploads):
            if upload.path == path and path not in self.forgotten:
                return web.Response(body=upload.data, content_type=upload.content_type)
        return web.json_response({"detail": "File not allowed"}, status=403)

    async def _predict(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("fn_index") != self.add_fn or not body.get("session_hash"):
            return web.json_response({"detail": "unknown fn_index or session"}, status=422)
        self._predicts[body["session_hash"]] = body
        history = body["data"][0]
        return web.json_response({"data": [history, None], "is_generating": False, "duration": 0.0})

    async def _join(self, request: web.Request) -> web.Response:
        body = await request.json()
        refusal, _ = self._take(("join_500", "queue_full"))
        if refusal == "join_500":
            return web.Response(status=500, text="Internal Server Error")
        if refusal == "queue_full":
            return web.json_response({"detail": "Queue is full."}, status=503)
        data = body.get("data")
        valid = isinstance(data, list) and len(data) == 2 and isinstance(data[0], list)
        if not valid or body.get("fn_index") != self.answer_fn or not body.get("session_hash"):
            return web.json_response({"detail": "invalid fn_index, session or data"}, status=422)
        kind, after = self._take(STREAM_FAILURES)
        record = SpaceRequest(
            event_id=uuid.uuid4().hex,
            session_hash=body["session_hash"],
            fn_index=body["fn_index"],
            trigger_id=body.get("trigger_id"),
            history=data[0],
            files=data[1] if isinstance(data[1], list) else [],
            headers=dict(request.headers),
            predict=self._predicts.get(body["session_hash"]),
            failure=kind,
            after=after,
        )
        self.requests.append(record)
        return web.json_response({"event_id": record.event_id})

    async def _cancel(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.cancels.append(body)
        for record in self.requests:
            if record.event_id == body.get("event_id"):
                record.cancelled.set()
        return web.json_response({"success": True})

    async def _jwt(self, request: web.Request) -> web.Response:
        self.jwt_requests.append(
            Seen(request.method, request.path, dict(request.headers), dict(request.query))
        )
        auth = request.headers.get("Authorization", "")
        if self._take(("jwt",))[0] or not auth.startswith("Bearer "):
            return web.json_response({"error": "Invalid credentials"}, status=401)
        return web.json_response({"token": f"fake-jwt-{len(self.jwt_requests)}"})

    async def _data(self, request: web.Request) -> web.StreamResponse:
        session = request.query.get("session_hash", "")
        pending = [r for r in self.requests if r.session_hash == session and not r.completed]
        if not pending:
            return web.json_response({"detail": "Session not found."}, status=404)
        if any(r.failure == "data_500" for r in pending):
            return web.Response(status=500, text="Internal Server Error")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for record in pending:
                await EventStream(self, request, response, record).run()
            await send_message(response, {"msg": "close_stream", "event_id": None})
        except ConnectionError:
            for record in pending:
                record.disconnected.set()
        finally:
            await self.notify()
        return response


async def _serve(args: argparse.Namespace) -> None:
    async with FakeSpace(port=args.port) as space:
        space.answer = args.answer
        space.chunk_size = args.chunk_size
        space.chunk_delay = args.chunk_delay
        print(space.url, flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Phi-4 Gradio Space until killed.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--answer", default="Hello from the fake Phi-4 Space.")
    parser.add_argument("--chunk-size", type=int, default=4)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    try:
        asyncio.run(_serve(parser.parse_args()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
