"""The rules that decide, after a failure, whether another server may still give the answer.

Shared by the replica pool and the fallback chain, so both fail over for the same reasons:
a failure before the first chunk moves on unless it was the request's own fault; a failure
that says the server itself is sick (cannot be reached, 5xx, 429) also takes a replica out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.phi4.errors import FailureClass, Phi4Error

SICK_STATUSES = frozenset({401, 403, 404, 408, 429})
"""4xx answers that speak about the server (its key, its model, its load), not the request."""


def may_fail_over(exc: Phi4Error) -> bool:
    """Before any text was shown, whether another server might answer what this one did not.

    A request failure (media refused, empty or garbled request) would fail anywhere.
    """
    return exc.failure_class is not FailureClass.REQUEST


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind a failure: the error's own, else one its causes carry.

    Causes are read by attribute (`status_code` in the openai client, `status` in aiohttp),
    so this works whichever HTTP client a backend uses.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for attribute in ("status", "status_code"):
            value = getattr(current, attribute, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        current = current.__cause__ or current.__context__
    return None


def server_is_sick(exc: Phi4Error) -> bool:
    """Whether a failure says the server, not this request, is at fault.

    Refused or timed-out connections, dropped streams, 5xx and 429 do; a plain 4xx such as
    "the conversation is too long" does not, and must not rest a healthy replica.
    """
    if exc.failure_class is FailureClass.REQUEST:
        return False
    status = http_status(exc)
    return status is None or status >= 500 or status in SICK_STATUSES


async def close_stream(stream: AsyncIterator[str]) -> None:
    """Close a backend's stream, so a stopped or abandoned answer ends on its server too."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
