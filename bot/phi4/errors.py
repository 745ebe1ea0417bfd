"""Typed backend failures, each carrying the one sentence a user is shown.

`UnreadableMedia` is the media layer's error, named here too because reading a caller's file
is part of a request.
"""

from __future__ import annotations

from enum import Enum

from bot.media.errors import UnreadableMedia
from bot.shared import MediaKind, UserFacingError, describe_accepts, media_nouns


class FailureClass(Enum):
    """What a failure says about where an answer could still come from.

    Failover, the user's sentence and the operator's hint all branch on this one value.
    """

    TRANSIENT = (
        "transient"  # quota, overload, timeouts, 5xx, a dropped connection: later or elsewhere
    )
    CONFIGURATION = "configuration"  # DNS, a refused local port, 401/403, unknown model or Space
    REQUEST = "request"  # this request as sent cannot be answered (media refused, empty, garbled)


class Phi4Error(UserFacingError):
    """Base of every backend failure."""

    user_message = "The model could not answer. Please try again."
    failure_class = FailureClass.TRANSIENT

    def __init__(self, detail: str | None = None, *, user_message: str | None = None) -> None:
        if user_message is not None:
            self.user_message = user_message
        super().__init__(detail or self.user_message)


class BackendUnavailable(Phi4Error):
    user_message = "The model is unreachable right now. Please try again in a minute."


class QuotaExceeded(Phi4Error):
    user_message = "The model is out of quota or overloaded. Please try again later."


class BackendTimeout(Phi4Error):
    user_message = "The model stopped responding, so the answer was abandoned."


class MediaNotSupported(Phi4Error):
    user_message = "This model cannot take that kind of media. Send text instead."
    failure_class = FailureClass.REQUEST

    @classmethod
    def refusing(
        cls, refused: frozenset[MediaKind], accepts: frozenset[MediaKind], detail: str = ""
    ) -> MediaNotSupported:
        """The error for media kinds a backend cannot take, naming what it can take."""
        sentence = f"This model takes {describe_accepts(accepts)}, not {media_nouns(refused)}."
        return cls(detail or sentence, user_message=sentence)


class BadAnswer(Phi4Error):
    user_message = "The model sent an answer I could not understand. Please try again."
    failure_class = FailureClass.REQUEST


class EmptyConversation(Phi4Error):
    user_message = "There is nothing to answer yet: send a message first."
    failure_class = FailureClass.REQUEST


__all__ = [
    "BackendTimeout",
    "BackendUnavailable",
    "BadAnswer",
    "EmptyConversation",
    "FailureClass",
    "MediaNotSupported",
    "Phi4Error",
    "QuotaExceeded",
    "UnreadableMedia",
    "UserFacingError",
]
