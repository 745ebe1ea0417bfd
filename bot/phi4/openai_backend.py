"""The Backend for any OpenAI-compatible chat-completions server (vLLM, Azure, Ollama, ...)."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote, urlsplit

import aiohttp
import orjson

from bot.phi4.backend import AsyncClosing, QueueListener
from bot.phi4.conversation import Conversation
from bot.phi4.error_body import error_code, parse_error_body
from bot.phi4.errors import (
    AnswerBrokenOff,
    AnswerCutAtLength,
    BackendTimeout,
    BadAnswer,
    ContextOverflow,
    EmptyConversation,
    EmptyStream,
    MediaNotSupported,
    Phi4Error,
    UnknownModel,
)
from bot.phi4.failures import serves
from bot.phi4.openai_errors import (
    GATEWAY_STATUSES,
    RETRY_STATUSES,
    Failure,
    ServerError,
    connection_error,
    may_refuse_media,
    media_refusal_detail,
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

WINDOW_LOOKUP_TIMEOUT = 3.0
"""Seconds each of `/models` and `/props` may take to state the context window."""
RETRY_ON_MEDIA = GATEWAY_STATUSES | {408, 409, 429}
"""What a request carrying media is retried on: answers that say nothing about the request."""


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
        max_tokens: int | None = None,
    ) -> None:
        unknown = set(accepts) - MEDIA_KINDS
        if unknown:
            raise ValueError(f"unknown media kinds {sorted(unknown)}; use image and/or audio")
        self.configured: frozenset[MediaKind] = cast(frozenset[MediaKind], frozenset(accepts))
        self.refused: frozenset[MediaKind] = frozenset()
        """Media this server refused although configured: learnt from its answers, kept for
        the life of the backend, so they go elsewhere (or are refused) without asking."""
        self._reachable = False
        """Whether the server answered a probe or a request: what tells a refusal from an
        outage."""
        self.max_tokens = max_tokens
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

    @property
    def accepts(self) -> frozenset[MediaKind]:
        """The media kinds this server takes: as configured, less those it refused."""
        return self.configured - self.refused

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
            why = "refused them before" if refused & self.refused else "is configured without them"
            raise MediaNotSupported.refusing(
                refused, self.accepts, f"{self.model} at {self.base_url} {why}: {sorted(refused)}"
            )

    async def stream(
        self, conversation: Conversation, *, on_queue: QueueListener | None = None
    ) -> AsyncIterator[str]:
        """Yield content deltas; these servers have no queue, so `on_queue` is never called.

        All deltas that arrived together are yielded as one string. A stream that ends
        without its end raises `EmptyStream` (nothing came) or `AnswerBrokenOff` (text
        came); one the server cut at its length limit raises `AnswerCutAtLength` after the
        last chunk. A failure of a request carrying media, from a server known to answer
        text, is a media refusal: remembered, and raised as `MediaNotSupported`.
        """
        if not conversation.turns:
            raise EmptyConversation("no turns to answer")
        conversation = conversation.earlier_media_only(self.accepts)
        self.check_media(conversation)
        kinds = conversation.media_kinds
        model = self.model_for(kinds)
        body = orjson.dumps(self._payload(model, conversation))
        turns = len(conversation.turns)
        log.debug("chat request: model %s, %d turns, %d bytes", model, turns, len(body))
        answer: list[str] = []
        ending = StreamEnding()
        failure: Failure | None = None
        try:
            async for text in self._read(body, ending, media=bool(kinds)):
                answer.append(text)
                yield text
        except ServerError as exc:
            failure = exc.failure
            error = translate(failure, where=self.base_url, model=model)
            error.__cause__ = exc
        except Phi4Error as exc:
            error = exc
        else:
            self._reachable = True
            if ending.finish == "length":
                raise AnswerCutAtLength(
                    f"{self.base_url} cut the answer at its length limit", text="".join(answer)
                )
            return
        if not answer and kinds and may_refuse_media(error, failure):
            if await self._reachable_now():
                raise self._refused(kinds, error) from error
        if isinstance(error, EmptyStream):
            log.warning(
                "%s closed the answer without sending anything (a request of %d bytes: "
                "%d turns, media %s)",
                self.base_url,
                len(body),
                turns,
                ", ".join(sorted(kinds)) or "none",
            )
        raise error

    def _payload(self, model: str, conversation: Conversation) -> dict[str, object]:
        payload: dict[str, object] = {
            "model": model,
            "messages": build_messages(conversation),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        return payload

    async def _read(self, body: bytes, ending: StreamEnding, *, media: bool) -> AsyncIterator[str]:
        """POST the request and yield its text as it streams; `ending` learns how it ended.

        Raises `ServerError` for an error answer or event (to be translated with the
        request's context), a typed `Phi4Error` for everything else.
        """
        started = False
        response: aiohttp.ClientResponse | None = None
        transport: asyncio.Transport | None = None
        ended_well = False
        try:
            async with StallWatchdog(self.stream_timeout) as watchdog:
                watchdog.arm()
                response = await self._post_chat(body, media=media)
                watchdog.armed = False
                watchdog.feed()
                read = response.content.readany
                if response.connection is not None:
                    transport = response.connection.transport
                parser = SSEDataParser()
                loop, pacer = asyncio.get_running_loop(), ReadPacer()
                while not ending.done:
                    await pacer.wait(loop, transport)  # let chunks gather: one read for several
                    watchdog.arm()
                    try:
                        chunk = await read()
                    finally:
                        watchdog.armed = False
                    if not chunk:
                        break  # the server closed the stream
                    events = parser.feed(chunk)
                    if not events:
                        continue  # a comment (keep-alive) or part of an event: not data
                    watchdog.feed()
                    text = _contents(events, ending)
                    if text:
                        started = True
                        pacer.text_given(loop.time())
                        yield text
            if not ending.complete:
                where = self.base_url
                if started:
                    raise AnswerBrokenOff(f"{where} ended the answer without its end")
                raise EmptyStream(
                    f"{where} closed the answer without sending anything "
                    f"({ending.events} events, a request of {len(body)} bytes)",
                    request_bytes=len(body),
                )
            ended_well = True
        except TimeoutError as exc:
            raise BackendTimeout(
                f"no data from {self.base_url} for {self.stream_timeout} s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise connection_error(exc, where=self.base_url, started=started) from exc
        except ValueError as exc:
            raise BadAnswer(f"unreadable stream from {self.base_url}: {exc}") from exc
        finally:
            if response is not None:
                response.close()  # mid-answer: hang up, so the server stops generating
            if not ended_well and transport is not None and not transport.is_closing():
                # a server that broke a stream may have closed this connection too: never
                # hand it to the next request
                transport.close()

    def _refused(self, kinds: frozenset[MediaKind], error: Phi4Error) -> MediaNotSupported:
        """Remember that this server refuses these media, and the error the user reads."""
        self.refused |= kinds
        log.warning(
            "%s; from now on %s will not be sent there",
            media_refusal_detail(kinds, self.base_url, error),
            " and ".join(sorted(kinds)),
        )
        return MediaNotSupported.refusing(kinds, self.accepts, f"{self.base_url}: {error}")

    async def _reachable_now(self) -> bool:
        """Whether this server is known to work: it answered a request or a probe before, or
        its probe answers now."""
        if self._reachable:
            return True
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self.probe()
        except (Phi4Error, TimeoutError):
            return False
        return True

    def _request(self, conversation: Conversation) -> dict[str, object]:
        """What `stream` would send for this conversation, as a value."""
        return self._payload(self.model_for(conversation.media_kinds), conversation)

    async def context_window(self) -> int | None:
        """The window the server states (vLLM's `max_model_len`, llama.cpp's `n_ctx`).

        Asked before an answer when not known yet, so a server slow to say is not waited for
        long: the configured window serves meanwhile.
        """
        return await ask_window(
            self.session,
            root=self._root,
            query=self._query,
            headers=self._headers,
            model=self.model,
            timeout=min(self.connect_timeout, WINDOW_LOOKUP_TIMEOUT),
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

    async def _post_chat(self, body: bytes, *, media: bool) -> aiohttp.ClientResponse:
        """POST the request; retry what the official client retries; raise on an error answer.

        A request carrying media is not retried on an answer that may be the server refusing
        that media (any 5xx but a gateway's): the stream judges it, and a refusal is final.
        """
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
                    response.close()  # never reuse it: the body may not have been read whole
                retry = response.status in RETRY_STATUSES and attempt < self.max_retries
                if not retry or (media and response.status not in RETRY_ON_MEDIA):
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
            raise translate(exc.failure, where=self.base_url, model=self.model) from exc
        except aiohttp.ClientError as exc:
            raise connection_error(exc, where=self.base_url, started=False) from exc
        except ValueError as exc:
            raise BadAnswer(f"{self.base_url} listed its models unreadably: {exc}") from exc
        self._reachable = True
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


@dataclass(slots=True)
class StreamEnding:
    """How a stream ended, learnt from its events: whether `[DONE]` came, the finish
    reason, and how many chunks it held."""

    events: int = 0
    done: bool = False
    finish: str | None = None

    @property
    def complete(self) -> bool:
        """The server said the answer ended: `[DONE]` or a finish reason, after a chunk."""
        return self.events > 0 and (self.done or self.finish is not None)


def _contents(events: list[bytes], ending: StreamEnding) -> str:
    """The content the events carry, joined; `ending` notes `[DONE]` and finish reasons.

    Raises `ServerError` for an error event, `ValueError` for data that is not a chunk.
    """
    parts: list[str] = []
    finish: str | None = None
    loads = orjson.loads
    for data in events:
        if data.startswith(b"[DONE]"):
            ending.done = True
            break
        chunk = loads(data)
        if not isinstance(chunk, dict):
            raise ValueError(f"not a chunk: {data[:200]!r}")
        error = chunk.get("error")
        if error:
            parsed = parse_error_body(data, status="event")
            raise ServerError(Failure("event", error_code(error), parsed.message, parsed.code))
        ending.events += 1
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    parts.append(content)
            finish = choice.get("finish_reason")
            if finish:
                ending.finish = finish
        if chunk.get("usage") is not None:
            log.debug("usage: %s", chunk["usage"])
    return "".join(parts)
