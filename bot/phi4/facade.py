"""`Microsoft_Phi_4`: the provider-style entry point taking OpenAI-style messages and media."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.media import decode_audio_to_wav_async, prepare_image_async, sniff_media
from bot.phi4 import factory
from bot.phi4.backend import Backend, QueueListener
from bot.phi4.conversation import Attachment, Conversation, Turn
from bot.phi4.errors import EmptyConversation, UnreadableMedia
from bot.phi4.settings import Phi4Settings
from bot.shared import MediaKind, Sentence

MediaSource = bytes | str | os.PathLike[str]
MediaItem = tuple[MediaSource, str | None]
Message = Mapping[str, Any]

DEFAULT_MAX_AUDIO_SECONDS = 300.0


@dataclass
class Phi4Session:
    """What a caller keeps to continue a conversation.

    `messages` is the conversation so far as plain OpenAI-style messages (the system prompt
    first); `turns` holds the same turns with their media, so an image stays in context on
    later turns. Every request re-sends the whole conversation, so no server keeps state and
    `session_hash` only names the session.
    """

    backend: str = ""
    session_hash: str = field(default_factory=lambda: uuid.uuid4().hex)
    system_prompt: str | None = None
    turns: tuple[Turn, ...] = ()
    messages: list[dict[str, Any]] = field(default_factory=list)

    def _record(self, system_prompt: str | None, turns: tuple[Turn, ...]) -> None:
        self.system_prompt, self.turns = system_prompt, turns
        system = [{"role": "system", "content": system_prompt}] if system_prompt else []
        self.messages = system + [{"role": t.role, "content": t.text} for t in turns]


def text_of(content: object) -> str:
    """The text of a message's `content`: a string, or a list of parts of which text counts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = [
            part if isinstance(part, str) else str(part.get("text", ""))
            for part in content
            if isinstance(part, str) or (isinstance(part, Mapping) and part.get("type") == "text")
        ]
        return "\n".join(t for t in texts if t)
    raise TypeError(f"message content must be a string or a list of parts, not {content!r}")


def split_messages(messages: Sequence[Message]) -> tuple[str | None, list[Turn]]:
    """The system prompt (system and developer messages joined) and the chat turns in order."""
    system: list[str] = []
    turns: list[Turn] = []
    for message in messages:
        role, text = message.get("role"), text_of(message.get("content"))
        if role in ("system", "developer"):
            system.append(text)
        elif role in ("user", "assistant"):
            turns.append(Turn(role, text))
        else:
            raise ValueError(f"unsupported message role {role!r}")
    return "\n\n".join(s for s in system if s) or None, turns


async def load_attachment(
    source: MediaSource,
    filename: str | None = None,
    *,
    max_audio_seconds: float = DEFAULT_MAX_AUDIO_SECONDS,
    kind: MediaKind | None = None,
) -> Attachment:
    """Bytes or a file as an Attachment Phi-4 takes: a verified image, or audio as 16 kHz WAV.

    The kind comes from the bytes (then the file name) unless the caller states it.
    """
    if isinstance(source, bytes):
        data, name = source, filename or "file"
    else:
        path = Path(source)
        name = filename or path.name
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise UnreadableMedia(
                f"cannot read {path}: {exc}",
                user_message=Sentence("I could not open the file {name}.", name=name),
            ) from exc
    if kind is None:
        mime = sniff_media(data, name)
        if mime is None:
            raise UnreadableMedia(
                f"{name} is neither image nor audio",
                user_message=Sentence(
                    "{name} is not an image or audio file I can read.", name=name
                ),
            )
        kind = "image" if mime.startswith("image/") else "audio"
    if kind == "image":
        image = await prepare_image_async(data, filename=name)
        return Attachment(image.data, image.mime_type, image.filename or name)
    decoded = await decode_audio_to_wav_async(data, max_seconds=max_audio_seconds)
    return Attachment(decoded.wav, "audio/wav", f"{Path(name).stem or 'audio'}.wav")


def _continued(session: Phi4Session, turns: list[Turn]) -> tuple[Turn, ...]:
    """Callers either re-send the whole history or only the new messages; accept both."""
    known = [(t.role, t.text) for t in session.turns]
    if [(t.role, t.text) for t in turns[: len(known)]] == known:
        return session.turns + tuple(turns[len(known) :])
    return session.turns + tuple(turns)


def _with_media(turns: tuple[Turn, ...], attachments: Sequence[Attachment]) -> tuple[Turn, ...]:
    if not turns or turns[-1].role != "user":
        raise EmptyConversation("the last message is not a user message")
    if not attachments:
        return turns
    last = turns[-1]
    return (*turns[:-1], Turn("user", last.text, last.attachments + tuple(attachments)))


class Microsoft_Phi_4:
    """Phi-4-multimodal as a streaming provider, on the Space by default.

    `create_async_generator` is a classmethod, so it works on the class and on an instance.
    Pass `backend=` to use any Backend (it stays open; the caller owns it) or `settings=` to
    choose one from configuration; otherwise the backend comes from `Phi4Settings()` and is
    closed when the answer ends. Unknown keyword arguments (`proxy`, `temperature`, ...) are
    accepted and ignored, as callers of provider-style APIs pass them freely.
    """

    label = "Microsoft Phi-4"
    url = "https://huggingface.co/spaces/microsoft/phi-4-multimodal"
    api_endpoint = "https://microsoft-phi-4-multimodal.hf.space/gradio_api/queue/join"
    working = True
    supports_stream = True
    supports_system_message = True
    needs_auth = False
    default_model = "phi-4-multimodal"
    default_vision_model = default_model
    models = [default_model]  # noqa: RUF012 - the provider convention is a plain list
    vision_models = [default_vision_model]  # noqa: RUF012

    @classmethod
    async def create_async_generator(
        cls,
        model: str,
        messages: Sequence[Message],
        media: Sequence[MediaItem] | None = None,
        conversation: Phi4Session | None = None,
        return_conversation: bool = False,
        *,
        backend: Backend | None = None,
        settings: Phi4Settings | None = None,
        api_key: str | None = None,
        on_queue: QueueListener | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Yield the answer's text chunks (after the session, with `return_conversation`).

        `model` is accepted for compatibility; there is one model. Media attach to the last
        user message. `api_key` is the Hugging Face token on the Space, the server key on an
        OpenAI-compatible backend. Failures raise a typed `Phi4Error`.
        """
        system_prompt, new_turns = split_messages(messages)
        session = conversation or Phi4Session()
        turns = _continued(session, new_turns)
        owned = backend is None
        if backend is None:
            settings = _with_key(settings, api_key)
            backend = factory.create_backend(settings)
        try:
            limit = settings.max_audio_seconds if settings else DEFAULT_MAX_AUDIO_SECONDS
            attachments = [
                await load_attachment(src, name, max_audio_seconds=limit)
                for src, name in media or ()
            ]
            turns = _with_media(turns, attachments)
            system_prompt = system_prompt or session.system_prompt
            previous = (session.system_prompt, session.turns)
            session.backend = backend.name
            session._record(system_prompt, turns)
            if return_conversation:
                yield session
            answer: list[str] = []
            try:
                async for chunk in backend.stream(
                    Conversation(turns, system_prompt), on_queue=on_queue
                ):
                    answer.append(chunk)
                    yield chunk
            except BaseException:
                session._record(*previous)
                raise
            session._record(system_prompt, (*turns, Turn("assistant", "".join(answer))))
        finally:
            if owned:
                await backend.aclose()


def _with_key(settings: Phi4Settings | None, api_key: str | None) -> Phi4Settings:
    """The configuration to build a backend from, with a caller's key taking precedence."""
    settings = settings or Phi4Settings()
    if not api_key:
        return settings
    field_name = "openai_api_key" if settings.backend_chain[0] == "openai" else "hf_token"
    return settings.model_copy(update={field_name: SecretStr(api_key)})
