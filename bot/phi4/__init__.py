"""The Phi-4 model client: a `Conversation` in, the answer's text chunks out, from any backend.

Usable on its own, without Telegram or a database: it imports only `bot.shared` and
`bot.media` (to turn a caller's files into media the model takes) and reads its
configuration from `Phi4Settings`, which the bot's settings extend. One module per
backend (`openai_backend`, with `openai_request` and `openai_errors` beside it; the `space`
package), the `Backend` protocol they implement, the plain values they take
(`conversation`) and the errors they raise (`errors`).
"""

from __future__ import annotations

from bot.phi4.backend import Backend, QueueListener
from bot.phi4.conversation import Attachment, Conversation, QueuePosition, Turn
from bot.phi4.errors import (
    AnswerBrokenOff,
    AnswerCutAtLength,
    BackendTimeout,
    BackendUnavailable,
    BadAnswer,
    ContextOverflow,
    EmptyConversation,
    EmptyStream,
    MediaNotSupported,
    Phi4Error,
    QuotaExceeded,
    UnreadableMedia,
)
from bot.phi4.factory import create_backend
from bot.phi4.settings import Phi4Settings
from bot.shared import MediaKind

__all__ = [
    "AnswerBrokenOff",
    "AnswerCutAtLength",
    "Attachment",
    "Backend",
    "BackendTimeout",
    "BackendUnavailable",
    "BadAnswer",
    "ContextOverflow",
    "Conversation",
    "EmptyConversation",
    "EmptyStream",
    "MediaKind",
    "MediaNotSupported",
    "Phi4Error",
    "Phi4Settings",
    "QueueListener",
    "QueuePosition",
    "QuotaExceeded",
    "Turn",
    "UnreadableMedia",
    "create_backend",
]
