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


class VideoTooLong(MediaError):
    """A video (or GIF) over `PHI4BOT_MAX_VIDEO_SECONDS`; the sentence names the limit."""

    def __init__(self, seconds: float | None, limit: float) -> None:
        self.seconds = seconds
        self.limit = limit
        most = int(limit)
        if seconds is None:
            message = Sentence(
                "That video is longer than the {most} seconds I can watch.", most=most
            )
        else:
            message = Sentence(
                "That video is {length} seconds long; I can watch at most {most} seconds.",
                length=max(round(seconds), most + 1),
                most=most,
            )
        super().__init__(f"video of {seconds} s over the {limit} s limit", user_message=message)


class VideoTooLarge(MediaError):
    """A video whose frames are too big to decode safely."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__(
            f"video of {width}x{height} pixels",
            user_message=Sentence(
                "That video's picture is too large for me ({width}×{height}).",
                width=width,
                height=height,
            ),
        )


class UnreadableVideo(MediaError):
    user_message = Sentence(
        "I could not read that video. It may be damaged or in a format I do not know."
    )


class EncryptedDocument(MediaError):
    user_message = Sentence("That PDF is protected by a password, so I cannot read it.")


class UnreadableDocument(MediaError):
    user_message = Sentence("I could not read that PDF. It may be damaged.")


class UndecodableText(MediaError):
    user_message = Sentence("I could not read that file as text.")
