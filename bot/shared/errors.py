"""The base of every error that ends as a reply in a chat rather than as a traceback."""

from __future__ import annotations

from bot.shared.i18n import Sentence


class UserFacingError(Exception):
    """An error that ends as a reply: `user_message` is one sentence safe to show in a chat."""

    user_message: str = Sentence("Something went wrong. Please try again.")
