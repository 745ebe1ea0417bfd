"""The Backend for any OpenAI-compatible chat-completions server (vLLM, Azure, Ollama, ...)."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import openai
from openai.types.chat import ChatCompletionMessageParam

from bot.phi4.backend import AsyncClosing, QueueListener
from bot.phi4.conversation import Attachment, Conversation, Turn
from bot.phi4.errors import (
    BackendTimeout,
    BackendUnavailable,
    BadAnswer,
    EmptyConversation,
    MediaNotSupported,
    Phi4Error,
    QuotaExceeded,
    UnknownModel,
)
from bot.phi4.failures import misconfigured_answer, misconfigured_connection, serves
from bot.shared import MediaKind, Sentence, media_nouns

log = logging.getLogger(__name__)

MEDIA_KINDS: frozenset[MediaKind] = frozenset({"image", "audio"})
_AUDIO_FORMATS = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
}
_MEDIA_WORDS = ("image", "audio", "vision", "multimodal", "multi-modal", "modalit")


def _audio_format(mime_type: str) -> str:
    """Azure takes only 'wav' or 'mp3'; vLLM sniffs the bytes, so the subtype is a fair guess."""
    return _AUDIO_FORMATS.get(mime_type, mime_type.partition("/")[2] or "wav")


def _media_part(attachment: Attachment) -> dict[str, Any]:
    encoded = base64.b64encode(attachment.data).decode("ascii")
    if attachment.kind == "image":
        url = f"data:{attachment.mime_type};base64,{encoded}"
        return {"type": "image_url", "image_url": {"url": url}}
    fmt = _audio_format(attachment.mime_type)
    return {"type": "input_audio", "input_audio": {"data": encoded, "format": fmt}}


def _message(turn: Turn) -> dict[str, Any]:
    if turn.role == "assistant" or not turn.attachments:
        return {"role": turn.role, "content": turn.text}
    parts: list[dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text else []
    parts.extend(_media_part(a) for a in turn.attachments)
    return {"role": "user", "content": parts}


def build_messages(conversation: Conversation) -> list[dict[str, Any]]:
    """Chat-completions messages: the system prompt first, then every turn in order."""
    messages: list[dict[str, Any]] = []
    if conversation.system_prompt:
        messages.append({"role": "system", "content": conversation.system_prompt})
    messages.extend(_message(turn) for turn in conversation.turns)
    return messages


def _split_query(base_url: str) -> tuple[str, dict[str, str]]:
    """Azure needs `?api-version=...` on every call; the client only keeps it as a default query."""
    parts = urlsplit(base_url)
    query = dict(parse_qsl(parts.query))
    return urlunsplit(parts._replace(query="")).rstrip("/"), query


def _server_message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return cast(str, inner["message"])
        if isinstance(inner, str):
            return inner
    return exc.message


def _body_code(exc: openai.OpenAIError) -> object:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get("code")
    return None


class OpenAIBackend(AsyncClosing):
    """Streams Phi-4 answers from an OpenAI-compatible server through the official client.

    The whole conversation is sent on every request, so the server keeps no state. Media kinds
    the deployment cannot take are refused before any request, with a sentence saying what it
    can take; LoRA deployments (vLLM) get the vision or speech adapter name as the model.
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
        self.base_url, query = _split_query(base_url)
        timeout = openai.Timeout(stream_timeout, connect=connect_timeout, read=stream_timeout)
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key or "EMPTY",
            timeout=timeout,
            max_retries=max_retries,
            default_query=query or None,
        )

    async def aclose(self) -> None:
        await self._client.close()

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
        """Yield content deltas; these servers have no queue, so `on_queue` is never called."""
        if not conversation.turns:
            raise EmptyConversation("no turns to answer")
        self.check_media(conversation)
        kinds = conversation.media_kinds
        model = self.model_for(kinds)
        log.debug("chat request: model %s, %d turns", model, len(conversation.turns))
        started = False
        stream: Any = None
        try:
            async with asyncio.timeout(self.stream_timeout):
                stream = await self._client.chat.completions.create(
                    model=model,
                    messages=cast("list[ChatCompletionMessageParam]", build_messages(conversation)),
                    stream=True,
                    stream_options={"include_usage": True},
                )
            chunks = stream.__aiter__()
            while True:
                async with asyncio.timeout(self.stream_timeout):
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        return
                if chunk.usage is not None:
                    log.debug("usage: %s", chunk.usage.model_dump(exclude_none=True))
                for choice in chunk.choices:
                    if choice.index == 0 and choice.delta and choice.delta.content:
                        started = True
                        yield choice.delta.content
        except TimeoutError as exc:
            raise BackendTimeout(
                f"no data from {self.base_url} for {self.stream_timeout} s"
            ) from exc
        except openai.OpenAIError as exc:
            raise self._translate(exc, model, kinds, started=started) from exc
        except ValueError as exc:
            raise BadAnswer(f"unreadable stream from {self.base_url}: {exc}") from exc
        finally:
            if stream is not None:
                await stream.close()

    async def probe(self) -> str:
        """List the server's models: proves it is reachable and that it serves ours.

        A server listing models without ours raises `UnknownModel`; one that lists none, or
        has no `/models`, is taken at its word until a chat request says otherwise.
        """
        try:
            page = await self._client.models.list()
        except openai.NotFoundError:
            return f"{self.base_url} is reachable (it does not list its models)"
        except openai.OpenAIError as exc:
            raise self._translate(exc, self.model, frozenset(), started=False) from exc
        ids = [m.id for m in page.data]
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

    def _translate(
        self, exc: openai.OpenAIError, model: str, kinds: frozenset[MediaKind], *, started: bool
    ) -> Phi4Error:
        """One typed error per failure, each with a sentence a chat user can act on."""
        where = self.base_url
        if isinstance(exc, openai.APITimeoutError):
            return BackendTimeout(f"{where} timed out")
        if isinstance(exc, openai.APIConnectionError):
            if started:
                return BackendUnavailable(
                    f"{where} dropped the connection mid-answer",
                    user_message=Sentence(
                        "The connection to the model broke off mid-answer. Please try again."
                    ),
                )
            return misconfigured_connection(exc, where) or BackendUnavailable(
                f"cannot connect to {where}"
            )
        message = _server_message(exc) if isinstance(exc, openai.APIError) else str(exc)
        status = exc.status_code if isinstance(exc, openai.APIStatusError) else _body_code(exc)
        detail = f"{where} answered {status}: {message}"
        lowered = message.lower()
        if kinds and status in (400, 422, "400") and any(w in lowered for w in _MEDIA_WORDS):
            return MediaNotSupported(
                detail,
                user_message=Sentence(
                    "The model server cannot take {media}. Send text.", media=media_nouns(kinds)
                ),
            )
        misconfigured = misconfigured_answer(status, message, where=where, model=model)
        if misconfigured is not None:
            return misconfigured
        if status in (429, 503, "rate_limit_exceeded") or "rate limit" in lowered:
            return QuotaExceeded(detail)
        if "context length" in lowered or "too long" in lowered:
            return Phi4Error(
                detail,
                user_message=Sentence(
                    "The conversation is too long for the model. Start a new one."
                ),
            )
        if type(exc) is openai.APIError:  # an error event in the middle of the stream
            return BackendUnavailable(
                f"{where} failed mid-answer: {message}",
                user_message=Sentence("The model failed while answering. Please try again."),
            )
        if isinstance(status, int) and 400 <= status < 500:
            return BadAnswer(
                detail,
                user_message=Sentence(
                    "The model server refused the request: {reason}", reason=message[:200]
                ),
            )
        if isinstance(exc, openai.APIStatusError):
            return BackendUnavailable(detail)
        return BadAnswer(detail)
