"""Building the backend `PHI4_BACKEND` names from the client's settings."""

from __future__ import annotations

from bot.phi4.backend import Backend
from bot.phi4.settings import Phi4Settings, secret_value


def create_backend(settings: Phi4Settings) -> Backend:
    """The backend `PHI4_BACKEND` names, configured from the settings.

    The backend modules are imported here, not at package import, so importing `bot.phi4`
    for its plain values never pulls in an HTTP client.
    """
    if settings.phi4_backend == "openai":
        from bot.phi4.openai_backend import OpenAIBackend

        return OpenAIBackend(
            settings.openai_base_url,
            api_key=secret_value(settings.openai_api_key),
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
        hf_token=secret_value(settings.hf_token),
        hf_endpoint=settings.hf_endpoint,
        fn_index=settings.space_fn_index,
        trigger_id=settings.space_trigger_id,
        connect_timeout=settings.connect_timeout,
        stream_timeout=settings.stream_timeout,
    )
