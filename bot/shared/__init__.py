"""The vocabulary every layer speaks: which media exist, and the base of errors users read.

This is the lowest layer of `bot/`: it imports nothing from the rest of the project, so the
model client, the media decoders, the conversation core and the Telegram adapter can all
name a `MediaKind`, raise a `UserFacingError` or write a `Sentence` (translated where it
is shown) without depending on each other.
"""

from __future__ import annotations

from bot.shared.errors import UserFacingError
from bot.shared.i18n import Sentence, translate
from bot.shared.media_kinds import MediaForm, MediaKind, describe_accepts, media_nouns

__all__ = [
    "MediaForm",
    "MediaKind",
    "Sentence",
    "UserFacingError",
    "describe_accepts",
    "media_nouns",
    "translate",
]
