"""The Phi-4 model client: a `Conversation` in, the answer's text chunks out, from any backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.phi4.backend import Backend, QueueListener
from bot.phi4.conversation import Attachment, Conversation, MediaKind, QueuePosition, Turn
from bot.phi4.errors import (
    BackendTimeout,
    BackendUnavailable,
    BadAnswer,
    EmptyConversation,
    MediaNotSupported,
    Phi4Error,
    QuotaExceeded,
    UnreadableMedia,
)

if TYPE_CHECKING:
    from pydantic import SecretStr

    from bot.config import Settings

__all__ = [
    "Attachment",
    "Backend",
    "BackendTimeout",
    "BackendUnavailable",
    "BadAnswer",
    "Conversation",
    "EmptyConversation",
    "MediaKind",
    "MediaNotSupported",
    "Phi4Error",
    "QueueListener",
    "QueuePosition",
    "QuotaExceeded",
    "Turn",
    "UnreadableMedia",
    "create_backend",
]


def _secret(value: SecretStr | None) -> str | None:
    """Unwrap a secret only where a client needs it; an empty value means unset."""
    return (value.get_secret_value() or None) if value is not None else None


def create_backend(settings: Settings) -> Backend:
    """The backend `PHI4_BACKEND` names, configured from the settings.

    The backend modules are imported here, not at package import, so importing `bot.phi4`
    for its plain values never pulls in an HTTP client.
    """
    if settings.phi4_backend == "openai":
        from bot.phi4.openai_backend import OpenAIBackend

        return OpenAIBackend(
            settings.openai_base_url,
            api_key=_secret(settings.openai_api_key),
            model=settings.phi4_model,
            accepts=settings.openai_accepts,
            vision_model=settings.openai_vision_model or None,
            speech_model=settings.openai_speech_model or None,
            connect_timeout=settings.connect_timeout,
            stream_timeout=settings.stream_timeout,
        )
    from bot.phi4.space import SpaceBackend

    return SpaceBackend(
        settings.phi4_space_url,
        hf_token=_secret(settings.hf_token),
        hf_endpoint=settings.hf_endpoint,
        fn_index=settings.space_fn_index,
        trigger_id=settings.space_trigger_id,
        connect_timeout=settings.connect_timeout,
        stream_timeout=settings.stream_timeout,
    )
