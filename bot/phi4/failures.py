"""Which failures are configuration mistakes, told apart the same way for every backend.

A host name that does not resolve, or a refused connection to this machine (or its local
network), will not mend by waiting: something has to be started or corrected. Anything else on
the way (a reset, a refused remote port, a TLS hiccup) may pass. The exception chain is walked,
so this works for the openai client's httpx errors and for aiohttp's alike.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from bot.phi4.errors import (
    AccessDenied,
    BackendMisconfigured,
    ConnectionRefused,
    NoChatEndpoint,
    ServerNotFound,
    UnknownModel,
)


def misconfigured_connection(exc: BaseException, where: str) -> BackendMisconfigured | None:
    """The configuration error a failed connection to `where` shows, or None if it may pass."""
    host = urlsplit(where).hostname or where
    for cause in _chain(exc):
        if isinstance(cause, socket.gaierror):
            reason = cause.strerror or "name resolution failed"
            return ServerNotFound(f"the host name {host} does not resolve ({reason})", where=where)
        refused = isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        )
        if refused and is_local(where):
            detail = f"nothing listens at {where} (connection refused)"
            return ConnectionRefused(detail, where=where)
    return None


def is_local(url: str) -> bool:
    """Whether `url` points at this machine or its local network, where the operator starts it.

    A single-label name (`vllm`, a compose service) counts as local too.
    """
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        single_label = bool(host) and "." not in host
        return single_label or host == "localhost" or host.endswith(".localhost")
    return address.is_loopback or address.is_private or address.is_link_local


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it, down to the OS error (each exception once)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        os_error = getattr(current, "os_error", None)  # aiohttp's ClientConnectorError
        if isinstance(os_error, OSError) and id(os_error) not in seen:
            yield os_error
            seen.add(id(os_error))
        current = current.__cause__ or current.__context__


def misconfigured_answer(
    status: object, message: str, *, where: str, model: str
) -> BackendMisconfigured | None:
    """The configuration error an OpenAI-compatible server's error answer shows, or None.

    401/403 is a key the server does not take; 404 naming a model is a model it does not
    serve; any other 404 means the address is not the API's root (usually a missing `/v1`).
    """
    detail = f"{where} answered {status}: {message}"
    if status in (401, 403, "401", "403"):
        return AccessDenied(detail, where=where)
    if status in (404, "404"):
        if "model" in message.lower():
            return UnknownModel(detail, where=where, model=model)
        return NoChatEndpoint(detail, where=where)
    return None


def serves(served: list[str], model: str) -> bool:
    """Whether a server listing `served` models takes requests for `model`.

    Ollama lists `phi4:latest` and answers to `phi4`; names are compared without case.
    """
    wanted = model.lower()
    return any(name.lower() in (wanted, f"{wanted}:latest") for name in served)
