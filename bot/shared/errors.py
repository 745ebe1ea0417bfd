"""The base of every error that ends as a reply in a chat rather than as a traceback."""

from __future__ import annotations


class UserFacingError(Exception):
    """An error that ends as a reply: `user_message` is one sentence safe to show in a chat."""

    user_message = "Something went wrong. Please try again."
