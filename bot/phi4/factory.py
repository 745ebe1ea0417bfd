"""Building the backend `PHI4_BACKEND` names from the client's settings."""

from __future__ import annotations

from bot.phi4.backend import Backend
from bot.phi4.settings import BackendName, Phi4Settings, secret_value


def create_backend(settings: Phi4Settings) -> Backend:
    """The backend `PHI4_BACKEND` names, configured from the settings.

    A list of names becomes a `FallbackChain` over them, and several `OPENAI_BASE_URL`s a
    `ReplicaPool`; a single name and URL build the plain backend, exactly as before.
    The backend modules are imported here, not at package import, so importing `bot.phi4`
    for its plain values never pulls in an HTTP client.
    """
    alone = len(settings.backend_chain) == 1
    members = [_one(name, settings, alone=alone) for name in settings.backend_chain]
    if len(members) == 1:
        return members[0]
    from bot.phi4.chain import FallbackChain

    return FallbackChain(members)


def _fitted(server: Backend, settings: Phi4Settings) -> Backend:
    """Each server gets only what fits its own context window (see `fitting`)."""
    from bot.phi4.fitting import WindowFitting

    return WindowFitting(
        server, window=settings.context_tokens, answer_tokens=settings.answer_tokens
    )


def _one(name: BackendName, settings: Phi4Settings, *, alone: bool) -> Backend:
    if name == "openai":
        return _openai(settings, alone=alone)
    from bot.phi4.space import SpaceBackend

    space = SpaceBackend(
        settings.phi4_space_url,
        hf_token=secret_value(settings.hf_token),
        hf_endpoint=settings.hf_endpoint,
        fn_index=settings.space_fn_index,
        trigger_id=settings.space_trigger_id,
        connect_timeout=settings.connect_timeout,
        stream_timeout=settings.stream_timeout,
    )
    return _fitted(space, settings)


def _openai(settings: Phi4Settings, *, alone: bool) -> Backend:
    """One server, or a pool of replicas.

    Only a server with nothing behind it retries a failed request itself; a replica or a
    chain member leaves that to the pool or chain, which move on to another server.
    """
    from bot.phi4.openai_backend import OpenAIBackend

    urls = settings.openai_base_urls
    replicas = [
        _fitted(
            OpenAIBackend(
                url,
                api_key=secret_value(settings.openai_api_key),
                model=settings.phi4_model,
                accepts=settings.openai_accepts,
                vision_model=settings.openai_vision_model or None,
                speech_model=settings.openai_speech_model or None,
                connect_timeout=settings.connect_timeout,
                stream_timeout=settings.stream_timeout,
                max_retries=1 if alone and len(urls) == 1 else 0,
                max_tokens=settings.max_tokens,
            ),
            settings,
        )
        for url in urls
    ]
    if len(replicas) == 1:
        return replicas[0]
    from bot.phi4.replicas import ReplicaPool

    return ReplicaPool(
        replicas,
        urls=urls,
        backoff=settings.replica_backoff,
        backoff_max=settings.replica_backoff_max,
        probe_timeout=settings.connect_timeout,
    )
