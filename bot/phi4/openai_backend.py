"""The Backend for any OpenAI-compatible chat-completions server (vLLM, Azure, Ollama, ...)."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import unquote, urlsplit

import aiohttp
import orjson

from bot.phi4.backend import AsyncClosing, QueueListener
from bot.phi4.conversation import Conversation
from bot.phi4.errors import (
    AnswerCutAtLength,
    BackendTimeout,
    BadAnswer,
    ContextOverflow,
    EmptyConversation,
    EmptyStream,
    MediaNotSupported,
    UnknownModel,
)
from bot.phi4.failures import serves
from bot.phi4.openai_errors import (
    RETRY_STATUSES,
    Failure,
    ServerError,
    connection_error,
    error_code,
    error_message,
    retry_delay,
    status_failure,
    translate,
)
from bot.phi4.openai_request import MEDIA_KINDS, build_messages, split_query, without_credentials
from bot.phi4.openai_window import ask_overflow, ask_window
from bot.phi4.read_pacing import ReadPacer
from bot.phi4.sse import SSEDataParser
from bot.phi4.watchdog import StallWatchdog
from bot.shared import MediaKind

log = logging.getLogger(__name__)


class OpenAIBackend(AsyncClosing):
    """Streams Phi-4 answers from an OpenAI-compatible server, read straight off the socket.

    The whole conversation is sent on every request, so the server keeps no state. Media kinds
    the deployment cannot take are refused before any request, with a sentence saying what it
    can take; LoRA deployments (vLLM) get the vision or speech adapter name as the model.

    The stream is read with aiohttp: every event already buffered is handled in one wake-up
    and their content given out as one piece, and a `ReadPacer` spaces reads once the answer
    has flowed a while; one `StallWatchdog` guards the whole answer.
    A failure before the answer starts (connection refused, 408, 409, 429, 5xx) is retried
    `max_retries` times with backoff, as the official client does.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None,
        model: str,
        accepts: frozenset[str] = MEDIA_KINDS,
        vision_model: str | None = None,
        speech_model: str | None = None,
        connect_timeout: float = 15.0,
        stream_timeout: float = 120.0,
        max_retries: int = 1,
    ) -> None:
        unknown = set(accepts) - MEDIA_KINDS
        if unknown:
            raise ValueError(f"unknown media kinds {sorted(unknown)}; use image and/or audio")
        self.accepts: frozenset[MediaKind] = cast(frozenset[MediaKind], frozenset(accepts))
        self.model = model
        self.vision_model = vision_model
        self.speech_model = speech_model
        self.stream_timeout = stream_timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.base_url, self._query = split_query(base_url)
        self._headers = {
            "Authorization": f"Bearer {api_key or 'EMPTY'}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self._root = without_credentials(self.base_url)
        if self._root != self.base_url:  # user:password@ in the URL: Basic auth, as httpx sent
            parts = urlsplit(self.base_url)
            login = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """Created on first use, inside the running loop; closed by `aclose`."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # uncapped: each answer holds a connection while it streams; a cap would hold
                # back every answer beyond it, and fail it after the connect timeout
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=self.connect_timeout, sock_connect=self.connect_timeout
                ),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def model_for(self, kinds: frozenset[MediaKind]) -> str:
        """vLLM serves Phi-4's LoRA adapters as models: vision for images, speech for audio."""
        if "image" in kinds and self.vision_model:
            return self.vision_model
        if kinds == {"audio"} and self.speech_model:
            return self.speech_model
        return self.model

    def check_media(self, conversation: Conversation) -> None:
        """Refuse media this deployment cannot take before anything is sent."""
        refused = conversation.media_kinds - self.accepts
        if refused:
            raise MediaNotSupported.refusing(
                refused, self.accepts, f"{self.model} is configured without {sorted(refused)}"
            )

    async def stream(
        self, conversation: Conversation, *, on_queue: QueueListener | None = None
    ) -> AsyncIterator[str]:
        """Yield content deltas; these servers have no queue, so `on_queue` is never called.

        All deltas that arrived together are yielded as one string.
        """
        if not conversation.turns:
            raise EmptyConversation("no turns to answer")
        self.check_media(conversation)
        kinds = conversation.media_kinds
        model = self.model_for(kinds)
        log.debug("chat request: model %s, %d turns", model, len(conversation.turns))
        body = orjson.dumps(self._request(conversation))
        started = False
        received = 0
        response: aiohttp.ClientResponse | None = None
        try:
            async with StallWatchdog(self.stream_timeout) as watchdog:
                watchdog.arm()
                response = await self._post_chat(body)
                watchdog.armed = False
                watchdog.feed()
                read = response.content.readany
                transport = response.connection.transport if response.connection else None
                parser = SSEDataParser()
                loop, pacer = asyncio.get_running_loop(), ReadPacer()
                while True:
                    await pacer.wait(loop, transport)  # let chunks gather: one read for several
                    watchdog.arm()
                    try:
                        chunk = await read()
                    finally:
                        watchdog.armed = False
                    if not chunk:
                        if not received:  # llama.cpp's answer to a prompt over its window
                            raise EmptyStream(
                                f"{self.base_url} closed the answer without sending anything "
                                f"(request of {len(body)} bytes, {len(conversation.turns)} turns)"
                            )
                        return  # the server ended the stream without [DONE]
                    received += len(chunk)
                    events = parser.feed(chunk)
                    if not events:
                        continue  # a comment (keep-alive) or part of an event: not data
                    watchdog.feed()
                    text, done, finish = _contents(events)
                    if text:
                        started = True
                        pacer.text_given(loop.time())
                        yield text
                    if finish == "length":
                        raise AnswerCutAtLength(
                            f"{self.base_url} cut the answer at its length limit"
                        )
                    if done:
                        return
        except TimeoutError as exc:
            raise BackendTimeout(
                f"no data from {self.base_url} for {self.stream_timeout} s"
            ) from exc
        except ServerError as exc:
            raise translate(exc.failure, where=self.base_url, model=model, kinds=kinds) from exc
        except aiohttp.ClientError as exc:
            raise connection_error(exc, where=self.base_url, started=started) from exc
        except ValueError as exc:
            raise BadAnswer(f"unreadable stream from {self.base_url}: {exc}") from exc
        finally:
            if response is not None:
                response.close()  # mid-answer: hang up, so the server stops generating

    def _request(self, conversation: Conversation) -> dict[str, object]:
        return {
            "model": self.model_for(conversation.media_kinds),
            "messages": build_messages(conversation),
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    async def context_window(self) -> int | None:
        """The window the server states (vLLM's `max_model_len`, llama.cpp's `n_ctx`)."""
        return await ask_window(
            self.session,
            root=self._root,
            query=self._query,
            headers=self._headers,
            model=self.model,
            timeout=self.connect_timeout,
        )

    async def overflow(self, conversation: Conversation) -> ContextOverflow | None:
        """Whether the server refuses this prompt as too long, asked without streaming."""
        return await ask_overflow(
            self.session,
            url=f"{self._root}/chat/completions",
            query=self._query,
            headers=self._headers,
            body=self._request(conversation),
            timeout=self.stream_timeout,
        )

    async def _post_chat(self, body: bytes) -> aiohttp.ClientResponse:
        """POST the request; retry what the official client retries; raise on an error answer."""
        url = f"{self._root}/chat/completions"
        attempt = 0
        while True:
            failure: Failure | None = None
            retry_after = None
            try:
                response = await self.session.post(
                    url, data=body, params=self._query, headers=self._headers
                )
            except (aiohttp.ClientConnectionError, aiohttp.ServerTimeoutError):
                if attempt >= self.max_retries:
                    raise
            else:
                if response.status == 200:
                    return response
                retry_after = response.headers.get("retry-after")
                try:
                    failure = await status_failure(response)
                finally:
                    response.release()
                if response.status not in RETRY_STATUSES or attempt >= self.max_retries:
                    raise ServerError(failure)
            delay = retry_delay(attempt, retry_after)
            log.info("retrying the chat request in %.1f s (%s)", delay, failure or "no connection")
            await asyncio.sleep(delay)
            attempt += 1

    async def probe(self) -> str:
        """List the server's models: proves it is reachable and that it serves ours.

        A server listing models without ours raises `UnknownModel`; one that lists none, or
        has no `/models`, is taken at its word until a chat request says otherwise.
        """
        url = f"{self._root}/models"
        try:
            async with asyncio.timeout(self.stream_timeout):
                async with self.session.get(
                    url, params=self._query, headers=self._headers
                ) as response:
                    if response.status == 404:
                        return f"{self.base_url} is reachable (it does not list its models)"
                    if response.status != 200:
                        raise ServerError(await status_failure(response))
                    page = orjson.loads(await response.read())
        except TimeoutError as exc:
            raise BackendTimeout(f"{self.base_url} timed out") from exc
        except ServerError as exc:
            raise translate(
                exc.failure, where=self.base_url, model=self.model, kinds=frozenset()
            ) from exc
        except aiohttp.ClientError as exc:
            raise connection_error(exc, where=self.base_url, started=False) from exc
        except ValueError as exc:
            raise BadAnswer(f"{self.base_url} listed its models unreadably: {exc}") from exc
        data = page.get("data") if isinstance(page, dict) else None
        ids = [m["id"] for m in data or () if isinstance(m, dict) and isinstance(m.get("id"), str)]
        if ids and not serves(ids, self.model):
            raise UnknownModel(
                f"{self.base_url} does not serve {self.model}; it serves {', '.join(ids[:10])}",
                where=self.base_url,
                model=self.model,
                served=tuple(ids),
            )
        wanted = [m for m in (self.vision_model, self.speech_model) if m]
        missing = [m for m in wanted if not serves(ids, m)]
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        text = f"{self.base_url} serves {len(ids)} model(s): {shown or 'none'}"
        return text + (f"; not listed: {', '.join(missing)}" if missing else "")


def _contents(events: list[bytes]) -> tuple[str, bool, str | None]:
    """The content the events carry, joined, whether `[DONE]` was among them, and the
    answer's finish reason if one came (`length` when the server cut it).

    Raises `ServerError` for an error event, `ValueError` for data that is not a chunk.
    """
    parts: list[str] = []
    finish: str | None = None
    loads = orjson.loads
    for data in events:
        if data.startswith(b"[DONE]"):
            return "".join(parts), True, finish
        chunk = loads(data)
        if not isinstance(chunk, dict):
            raise ValueError(f"not a chunk: {data[:200]!r}")
        error = chunk.get("error")
        if error:
            message = error_message(error, str(error)[:500])
            raise ServerError(Failure("event", error_code(error), message))
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta")
            if choice.get("index", 0) != 0:
                continue
            if delta:
                content = delta.get("content")
                if content:
                    parts.append(content)
            finish = choice.get("finish_reason") or finish
        if chunk.get("usage") is not None:
            log.debug("usage: %s", chunk["usage"])
    return "".join(parts), False, finish
