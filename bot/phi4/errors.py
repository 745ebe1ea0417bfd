"""Typed backend failures, each carrying the one sentence a user is shown.

`UnreadableMedia` is the media layer's error, named here too because reading a caller's file
is part of a request.
"""

from __future__ import annotations

from enum import Enum

from bot.media.errors import UnreadableMedia
from bot.shared import MediaKind, Sentence, UserFacingError, describe_accepts, media_nouns


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

    user_message: str = Sentence("The model could not answer. Please try again.")
    failure_class = FailureClass.TRANSIENT
    status: int | None = None
    """The HTTP status the server answered, when the failure was an answer; replicas use it to
    tell a sick server (5xx, 429) from a request it refused (another 4xx)."""

    def __init__(
        self,
        detail: str | None = None,
        *,
        user_message: str | None = None,
        status: int | None = None,
    ) -> None:
        if user_message is not None:
            self.user_message = user_message
        if status is not None:
            self.status = status
        super().__init__(detail or self.user_message)


class BackendUnavailable(Phi4Error):
    user_message = Sentence("The model is unreachable right now. Please try again in a minute.")


class BackendMisconfigured(BackendUnavailable):
    """The backend cannot answer until its configuration changes: waiting will not help.

    Each subclass names one kind of mistake, so the operator can be told once per kind; the
    chat user sees only that the bot is not set up yet. `where` is the address concerned.
    """

    user_message = Sentence(
        "I am not set up to answer yet: my model server is misconfigured. "
        "Whoever runs this bot has to fix that; trying again will not help."
    )
    failure_class = FailureClass.CONFIGURATION

    def __init__(self, detail: str, *, where: str = "") -> None:
        super().__init__(detail)
        self.where = where


class ServerNotFound(BackendMisconfigured):
    """The server's host name does not resolve (a typo, or no network on this machine)."""


class ConnectionRefused(BackendMisconfigured):
    """Nothing listens at a local address: the server is not started, or the port is wrong."""


class AccessDenied(BackendMisconfigured):
    """The server refused our credentials (401/403), or the lack of them."""


class UnknownModel(BackendMisconfigured):
    """The server does not serve the model we ask for; `served` lists what it does, if known."""

    def __init__(
        self, detail: str, *, where: str = "", model: str, served: tuple[str, ...] = ()
    ) -> None:
        super().__init__(detail, where=where)
        self.model = model
        self.served = served


class NoChatEndpoint(BackendMisconfigured):
    """The address answers, but not as an OpenAI-compatible API (usually a missing `/v1`)."""


class SpaceNotFound(BackendMisconfigured):
    """No Gradio Space answers at the address (deleted, renamed or mistyped)."""


class SpacePaused(BackendMisconfigured):
    """The Space was paused by its owner; only they can restart it."""


class SpaceAsleep(BackendUnavailable):
    """The Space sleeps after a while without visitors and wakes on the next request."""

    user_message = Sentence("The model is waking up. Please try again in a minute.")


class QuotaExceeded(Phi4Error):
    user_message = Sentence("The model is out of quota or overloaded. Please try again later.")


class BackendTimeout(Phi4Error):
    user_message = Sentence("The model stopped responding, so the answer was abandoned.")


class MediaNotSupported(Phi4Error):
    user_message = Sentence("This model cannot take that kind of media. Send text instead.")
    failure_class = FailureClass.REQUEST

    @classmethod
    def refusing(
        cls, refused: frozenset[MediaKind], accepts: frozenset[MediaKind], detail: str = ""
    ) -> MediaNotSupported:
        """The error for media kinds a backend cannot take, naming what it can take."""
        sentence = Sentence(
            "This model takes {accepted}, not {refused}.",
            accepted=describe_accepts(accepts),
            refused=media_nouns(refused),
        )
        return cls(detail or sentence, user_message=sentence)


class EmptyStream(Phi4Error):
    """The server accepted the request, then closed the answer without a single event.

    llama.cpp's server does this (HTTP 200, empty body) for a streamed request it cannot
    serve: a prompt longer than its window, a content part its chat template cannot render.
    `request_bytes` is the size of what was sent, so a caller can tell a prompt near the
    window from a server that simply broke.
    """

    user_message = Sentence(
        "The model server closed the answer without sending anything. Please try again."
    )
    status = 200

    def __init__(self, detail: str, *, request_bytes: int = 0) -> None:
        super().__init__(detail)
        self.request_bytes = request_bytes


class AnswerBrokenOff(BackendUnavailable):
    """The answer had begun, then the stream ended without its end: no `[DONE]`, no finish
    reason, or a dropped connection. The text so far is kept, marked interrupted."""

    user_message = Sentence("The connection to the model broke off mid-answer. Please try again.")


class AnswerCutAtLength(Phi4Error):
    """The server ended the answer at its length limit (`finish_reason: "length"`).

    Every chunk was already given out; `text` is the whole answer as it stands, so the chat
    can keep it, tell the user it was cut, and offer to continue.
    """

    user_message = Sentence("The answer was cut at the model's length limit.")
    failure_class = FailureClass.REQUEST

    def __init__(self, detail: str, *, text: str = "") -> None:
        super().__init__(detail)
        self.text = text


class ContextOverflow(Phi4Error):
    """The server refused the prompt as longer than its context window.

    `window` and `requested` are the server's own numbers (tokens) when it gave them (vLLM's
    and llama.cpp's messages do), for whoever shortens the prompt and asks again.
    """

    user_message = Sentence("The conversation is too long for the model. Start a new one.")
    failure_class = FailureClass.REQUEST

    def __init__(
        self, detail: str, *, window: int | None = None, requested: int | None = None
    ) -> None:
        super().__init__(detail)
        self.window = window
        self.requested = requested


class BadAnswer(Phi4Error):
    user_message = Sentence("The model sent an answer I could not understand. Please try again.")
    failure_class = FailureClass.REQUEST


class TurnTooLong(Phi4Error):
    """The message being answered does not fit the model's window even without any history;
    the sentence names what to shorten."""

    user_message = Sentence("Your message is too long for the model. Send a shorter one.")
    failure_class = FailureClass.REQUEST


class EmptyConversation(Phi4Error):
    user_message = Sentence("There is nothing to answer yet: send a message first.")
    failure_class = FailureClass.REQUEST


__all__ = [
    "AccessDenied",
    "AnswerBrokenOff",
    "AnswerCutAtLength",
    "BackendMisconfigured",
    "BackendTimeout",
    "BackendUnavailable",
    "BadAnswer",
    "ConnectionRefused",
    "ContextOverflow",
    "EmptyConversation",
    "EmptyStream",
    "FailureClass",
    "MediaNotSupported",
    "NoChatEndpoint",
    "Phi4Error",
    "QuotaExceeded",
    "ServerNotFound",
    "SpaceAsleep",
    "SpaceNotFound",
    "SpacePaused",
    "TurnTooLong",
    "UnknownModel",
    "UnreadableMedia",
    "UserFacingError",
]
