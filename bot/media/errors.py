"""Why a file could not be made into media for the model, in a sentence its sender reads."""

from __future__ import annotations

from bot.shared import Sentence, UserFacingError


class MediaError(UserFacingError):
    """Base of the media layer's refusals: `detail` for logs, `user_message` for the chat."""

    user_message: str = Sentence("I could not read that file.")

    def __init__(self, detail: str | None = None, *, user_message: str | None = None) -> None:
        if user_message is not None:
            self.user_message = user_message
        super().__init__(detail or self.user_message)


class UnreadableMedia(MediaError):
    user_message = Sentence("I could not read that file. Is it a valid image or audio file?")
