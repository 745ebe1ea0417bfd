"""Phi-4 through its Gradio Space (`PHI4_BACKEND=space`): upload, add, join the queue, stream.

One turn follows PROTOCOLS §1 under a fresh `session_hash`: the conversation's files are
uploaded once per backend (`uploads`), the turn is added with `/run/predict`, and
`/queue/join` gets `[whole history, this turn's file messages]`, each file appearing once and
every message in the shape the Space's Gradio version validates (see `turn`), so the
answer never depends on state kept by the Space. The answer streams from `/queue/data` as
Gradio diffs, replayed by `AnswerTracker` (whose docstring states the rule for rewritten text).
Gradio reports rank 0 even when idle, so only a real queue reaches `on_queue` (`queue_notice`).
A turn that fails before any output makes the next one read `/config` again, in case the Space
was upgraded (say from Gradio 5 to 6) while the backend ran.

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
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import aiohttp

from bot.phi4.backend import AsyncClosing, QueueListener
from bot.phi4.conversation import Conversation
from bot.phi4.errors import (
    BackendTimeout,
    BackendUnavailable,
    BadAnswer,
    EmptyConversation,
    Phi4Error,
)
from bot.phi4.read_pacing import ReadPacer
from bot.phi4.space.gradio_config import SpaceSetup, read_setup
from bot.phi4.space.reading import CONNECTION_BROKE, AnswerReading, QueuedEvent
from bot.phi4.space.turn import build_history, failure_context, file_data, file_message, user_text
from bot.phi4.space.uploads import UploadCache
from bot.phi4.space.wire import SpaceWire
from bot.phi4.space.zerogpu import ZeroGpuAuth
from bot.phi4.sse import SSEDataParser
from bot.phi4.watchdog import StallWatchdog
from bot.shared import MediaKind
from bot.shared.tasks import TaskSupervisor

log = logging.getLogger(__name__)


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
        self._setup: SpaceSetup | None = None
        self._setup_lock = asyncio.Lock()
        self._uploads = UploadCache()
        self._cancels = TaskSupervisor()
        """Requests asking the Space to stop generating; the backend is used without the
        bot too (`phi4bot chat`), so it owns them and `aclose` drains them."""

    async def aclose(self) -> None:
        """Let pending cancel requests finish briefly, then close the session we created."""
        deadline = asyncio.get_running_loop().time() + self._wire.connect_timeout
        await self._cancels.drain(deadline)
        await self._wire.aclose()

    async def probe(self) -> str:
        """Read `/config` afresh (later turns reuse it); used by `phi4bot check`."""
        setup = await self._load_setup(refresh=True)
        if not setup.is_gradio:
            raise BackendUnavailable(f"{self.root}/config is not a Gradio config")
        version = setup.version or "(unknown version)"
        return f"Gradio {version} Space {setup.space_id or self.root}"

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
        earlier = [a for turn in turns[:-1] for a in turn.attachments]
        attachments = [*earlier, *turns[-1].attachments]
        paths = await self._uploads.server_paths(
            self._wire, setup.prefix, session_hash, attachments
        )
        files = [
            file_data(self.root, setup.prefix, p, a)
            for p, a in zip(paths, attachments, strict=True)
        ]
        current_files = files[len(earlier) :]
        endpoints = setup.endpoints
        await self._wire.post_json(
            f"{setup.prefix}/run/predict",
            {
                "data": [
                    [],
                    {"text": user_text(conversation, len(turns) - 1), "files": current_files},
                    None,
                ],
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
                    build_history(conversation, files[: len(earlier)], setup.shape),
                    [file_message(f, setup.shape) for f in current_files],
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
        event = QueuedEvent(session_hash, event_id)
        log.debug("joined the Space queue: fn %s event %s", endpoints.answer_fn, event_id)
        try:
            async with contextlib.aclosing(self._answer(setup, event, on_queue)) as answer:
                async for piece in answer:
                    yield piece
        finally:
            if not event.done:
                self._cancel_later(setup, event)

    async def _answer(
        self, setup: SpaceSetup, event: QueuedEvent, on_queue: QueueListener | None
    ) -> AsyncGenerator[str, None]:
        """Read the event's messages from `/queue/data` and yield the answer's increments.

        Every message already buffered is handled in one wake-up and the text they add is
        yielded as one piece; one `StallWatchdog` guards the whole stream.
        """
        loop = asyncio.get_running_loop()
        reading = AnswerReading(event, on_queue, loop.time())
        reading.context = lambda message: self._context(setup, event, message, response)
        reading.forget_setup = self._forget_setup
        try:
            async with (
                StallWatchdog(self._stream_timeout) as watchdog,
                self._wire.open_stream(setup.prefix, event.session_hash) as response,
            ):
                parser, read = SSEDataParser(), response.content.readany
                transport = response.connection.transport if response.connection else None
                pacer = ReadPacer()
                while True:
                    await pacer.wait(loop, transport)  # let messages gather: one read for several
                    watchdog.arm()
                    try:
                        chunk = await read()
                    except aiohttp.ClientError as exc:
                        raise BackendUnavailable(
                            f"answer stream broke: {type(exc).__name__}",
                            user_message=CONNECTION_BROKE,
                        ) from exc
                    finally:
                        watchdog.armed = False
                    if not chunk:
                        raise BackendUnavailable(
                            "the answer stream ended early", user_message=CONNECTION_BROKE
                        )
                    try:
                        done = reading.take(parser.feed(chunk), loop.time())
                    except Phi4Error:
                        if text := reading.flush():
                            yield text  # what came before the failure is still shown
                        raise
                    if text := reading.flush():
                        pacer.text_given(loop.time())
                        yield text
                        reading.last_data = loop.time()
                    if done:
                        return
                    watchdog.deadline = reading.deadline(self._stream_timeout)
        except TimeoutError:
            raise BackendTimeout(f"no data from the Space for {self._stream_timeout:g} s") from None

    def _context(
        self,
        setup: SpaceSetup,
        event: QueuedEvent,
        message: Mapping[str, Any],
        response: aiohttp.ClientResponse,
    ) -> str:
        """What is known about an event, for failures the Space reports without a message."""
        return failure_context(
            setup.version, setup.endpoints.answer_fn, response.status, message, event.updates
        )

    def _forget_setup(self) -> None:
        """A turn refused before any output: the next one reads `/config` again."""
        self._setup = None

    async def _load_setup(self, *, refresh: bool = False) -> SpaceSetup:
        """Read `/config` once per backend (again on `refresh`); later turns reuse it."""
        async with self._setup_lock:
            if self._setup is None or refresh:
                config = await self._wire.get_config()
                self._setup = read_setup(
                    config, self.root, fn_index=self._fn_index, trigger_id=self._trigger_id
                )
                log.debug("Space setup: %s", self._setup)
            return self._setup

    def _cancel_later(self, setup: SpaceSetup, event: QueuedEvent) -> None:
        """Ask the Space to stop generating, without holding up the caller who stopped reading."""
        body = {
            "session_hash": event.session_hash,
            "fn_index": setup.endpoints.answer_fn,
            "event_id": event.event_id,
        }
        try:
            self._cancels.spawn(self._wire.cancel(setup.prefix, body), name="space-cancel")
        except RuntimeError:
            return
