"""Phi-4 through its Gradio Space (`PHI4_BACKEND=space`): upload, add, join the queue, stream.

One turn follows PROTOCOLS §1 under a fresh `session_hash`: every attachment of the
conversation is uploaded, the turn is added with `/run/predict`, and `/queue/join` gets
`[whole history, this turn's file messages]` (PROTOCOLS' shape; the history itself holds every
turn's files too, see `space_turn` for its layout and the system prompt), so the answer never
depends on state kept by the Space. The answer streams from `/queue/data` as Gradio diffs,
replayed by `AnswerTracker` (whose docstring states the rule for rewritten text).

Stall rule: once the request runs, only real messages count: if none arrives for
`stream_timeout` seconds the answer is abandoned with `BackendTimeout`, since Gradio keeps
sending heartbeats while a stuck GPU produces nothing. While the request waits in the queue
(after an `estimation`) that timer does not run; only a dead connection (no byte at all,
heartbeats included, for `QUEUED_SILENCE` seconds or `stream_timeout` if longer) ends the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import aiohttp

from bot.phi4.backend import AsyncClosing, QueueListener
from bot.phi4.conversation import Conversation
from bot.phi4.errors import (
    BackendTimeout,
    BackendUnavailable,
    BadAnswer,
    EmptyConversation,
)
from bot.phi4.space.gradio_config import (
    DEFAULT_API_PREFIX,
    PUBLIC_SPACE_ENDPOINTS,
    ChatEndpoints,
    api_prefix,
    find_chat_endpoints,
)
from bot.phi4.space.gradio_diff import AnswerTracker
from bot.phi4.space.turn import (
    build_history,
    completed_rest,
    file_data,
    generating_piece,
    queue_position,
    read_message,
)
from bot.phi4.space.wire import SpaceWire
from bot.phi4.space.zerogpu import ZeroGpuAuth, space_id_from_url
from bot.phi4.sse import SSEParser
from bot.shared import MediaKind, Sentence

log = logging.getLogger(__name__)

QUEUED_SILENCE = 60.0
"""Seconds without a single byte, heartbeats included, after which a queued request is given up:
Gradio sends a heartbeat every 15 s, so this much silence means the connection is dead."""

CONNECTION_BROKE = Sentence(
    "The connection to the model broke before the answer was complete. Please try again."
)


@dataclass(frozen=True, slots=True)
class _SpaceSetup:
    """What `/config` told us once: the function numbers, the API prefix and the Space id."""

    endpoints: ChatEndpoints
    prefix: str
    space_id: str | None


@dataclass(slots=True)
class _Event:
    """One queued call; `done` once the Space has finished it and no cancel is needed."""

    session_hash: str
    event_id: str
    done: bool = False


class SpaceBackend(AsyncClosing):
    """A Gradio Space serving Phi-4-multimodal, spoken to over its queue API."""

    name = "space"
    accepts: frozenset[MediaKind] = frozenset({"image", "audio"})

    def __init__(
        self,
        url: str,
        *,
        hf_token: str | None = None,
        hf_endpoint: str = "https://huggingface.co",
        fn_index: int | None = None,
        trigger_id: int | None = None,
        connect_timeout: float = 15.0,
        stream_timeout: float = 120.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        """`fn_index` is the queued function that streams the answer (11 on the public Space);
        the message is added with `fn_index - 1`. Unset numbers are looked up in `/config`."""
        self.root = url.rstrip("/")
        self._fn_index = fn_index
        self._trigger_id = trigger_id
        self._stream_timeout = stream_timeout
        self._auth = ZeroGpuAuth(hf_token, hf_endpoint)
        self._wire = SpaceWire(self.root, self._auth, session, connect_timeout, stream_timeout)
        self._setup: _SpaceSetup | None = None
        self._setup_lock = asyncio.Lock()
        self._cancels: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        """Let pending cancel requests finish briefly, then close the session we created."""
        if self._cancels:
            await asyncio.wait(self._cancels, timeout=self._wire.connect_timeout)
        await self._wire.aclose()

    async def probe(self) -> str:
        """Check the Space answers `/config`; used by `phi4bot check`."""
        config = await self._wire.get_config()
        if config is None:
            raise BackendUnavailable(f"{self.root}/config is not a Gradio config")
        version = config.get("version")
        space = config.get("space_id") or self.root
        return f"Gradio {version or '(unknown version)'} Space {space}"

    async def stream(
        self, conversation: Conversation, *, on_queue: QueueListener | None = None
    ) -> AsyncIterator[str]:
        """Yield the answer's new text as the Space generates it."""
        turns = conversation.turns
        if not turns or turns[-1].role != "user":
            raise EmptyConversation("the conversation has no user turn to answer")
        if not turns[-1].text.strip() and not turns[-1].attachments:
            raise EmptyConversation("the last user turn is empty")
        setup = await self._load_setup()
        await self._auth.refresh(self._wire.session, setup.space_id, self._wire.connect_timeout)
        session_hash = uuid.uuid4().hex
        attachments = [a for turn in turns for a in turn.attachments]
        paths = await self._wire.upload(setup.prefix, session_hash, attachments)
        files = [
            file_data(self.root, setup.prefix, p, a)
            for p, a in zip(paths, attachments, strict=True)
        ]
        history = build_history(conversation, files)
        current_files = files[len(files) - len(turns[-1].attachments) :]
        tail = history[-1] if history else {}
        current_text = tail["content"] if isinstance(tail.get("content"), str) else ""
        endpoints = setup.endpoints
        await self._wire.post_json(
            f"{setup.prefix}/run/predict",
            {
                "data": [[], {"text": current_text, "files": current_files}, None],
                "event_data": None,
                "fn_index": endpoints.add_fn,
                "trigger_id": endpoints.trigger_id,
                "session_hash": session_hash,
            },
        )
        joined = await self._wire.post_json(
            f"{setup.prefix}/queue/join",
            {
                "data": [
                    history,
                    [{"role": "user", "content": {"file": f}} for f in current_files],
                ],
                "event_data": None,
                "fn_index": endpoints.answer_fn,
                "trigger_id": endpoints.trigger_id,
                "session_hash": session_hash,
            },
        )
        event_id = joined.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            raise BadAnswer(f"queue/join answered without an event_id: {joined!r:.200}")
        event = _Event(session_hash, event_id)
        log.debug("joined the Space queue: fn %s event %s", endpoints.answer_fn, event_id)
        try:
            async with contextlib.aclosing(self._answer(setup, event, on_queue)) as answer:
                async for piece in answer:
                    yield piece
        finally:
            if not event.done:
                self._cancel_later(setup, event)

    async def _answer(
        self, setup: _SpaceSetup, event: _Event, on_queue: QueueListener | None
    ) -> AsyncGenerator[str, None]:
        """Read the event's messages from `/queue/data` and yield the answer's increments."""
        loop = asyncio.get_running_loop()
        async with self._wire.open_stream(setup.prefix, event.session_hash) as response:
            parser, tracker = SSEParser(), AnswerTracker()
            queued = False
            last_data = loop.time()
            while True:
                limit = (
                    max(self._stream_timeout, QUEUED_SILENCE) if queued else self._stream_timeout
                )
                chunk = await self._read(response, last_data + limit - loop.time())
                if not chunk:
                    raise BackendUnavailable(
                        "the answer stream ended early", user_message=CONNECTION_BROKE
                    )
                if queued:
                    last_data = loop.time()
                for sse in parser.feed(chunk):
                    message = read_message(sse.data)
                    if message.get("event_id") not in (None, event.event_id):
                        continue
                    kind = message.get("msg")
                    if kind == "heartbeat":
                        continue
                    last_data = loop.time()
                    if kind == "estimation":
                        queued = True
                        if on_queue is not None:
                            on_queue(queue_position(message))
                    elif kind == "process_generating":
                        queued = False
                        piece = generating_piece(tracker, message)
                        if piece:
                            yield piece
                            last_data = loop.time()
                    elif kind == "process_completed":
                        event.done = True
                        rest = completed_rest(tracker, message)
                        log.debug("Space answer complete: %d characters", len(tracker.answer))
                        if rest:
                            yield rest
                        return
                    elif kind == "unexpected_error":
                        event.done = True
                        raise BackendUnavailable(
                            f"Space unexpected_error: {str(message.get('message'))[:200]}",
                            user_message=Sentence(
                                "The Space hit an unexpected error. Please try again."
                            ),
                        )
                    elif kind == "close_stream":
                        raise BackendUnavailable(
                            "the Space closed the stream before completing",
                            user_message=CONNECTION_BROKE,
                        )
                    else:
                        queued = queued and kind not in ("process_starts", "progress")
                        log.debug("Space message %s", kind)

    async def _read(self, response: aiohttp.ClientResponse, timeout: float) -> bytes:
        if timeout <= 0:
            raise BackendTimeout(f"no data from the Space for {self._stream_timeout:g} s")
        try:
            return await asyncio.wait_for(response.content.readany(), timeout)
        except TimeoutError:
            raise BackendTimeout(f"no data from the Space for {self._stream_timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise BackendUnavailable(
                f"answer stream broke: {type(exc).__name__}", user_message=CONNECTION_BROKE
            ) from exc

    async def _load_setup(self) -> _SpaceSetup:
        """Read `/config` once per backend; later turns reuse what it said."""
        async with self._setup_lock:
            if self._setup is None:
                config = await self._wire.get_config() or {}
                found = find_chat_endpoints(config)
                if found is None:
                    log.debug("no chat functions recognised in /config; using the public Space's")
                    found = PUBLIC_SPACE_ENDPOINTS
                if self._fn_index is not None:
                    found = ChatEndpoints(self._fn_index - 1, self._fn_index, found.trigger_id)
                if self._trigger_id is not None:
                    found = ChatEndpoints(found.add_fn, found.answer_fn, self._trigger_id)
                space_id = config.get("space_id")
                self._setup = _SpaceSetup(
                    endpoints=found,
                    prefix=api_prefix(config) if config else DEFAULT_API_PREFIX,
                    space_id=space_id
                    if isinstance(space_id, str) and space_id
                    else space_id_from_url(self.root),
                )
                log.debug("Space setup: %s", self._setup)
            return self._setup

    def _cancel_later(self, setup: _SpaceSetup, event: _Event) -> None:
        """Ask the Space to stop generating, without holding up the caller who stopped reading."""
        body = {
            "session_hash": event.session_hash,
            "fn_index": setup.endpoints.answer_fn,
            "event_id": event.event_id,
        }
        try:
            task = asyncio.get_running_loop().create_task(self._wire.cancel(setup.prefix, body))
        except RuntimeError:
            return
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)
