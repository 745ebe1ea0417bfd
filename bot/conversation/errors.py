"""Reasons the bot refuses a turn before the model is asked, each with the sentence shown."""

from __future__ import annotations

from bot.shared import Sentence, UserFacingError
from storage import StoreUnavailable


class TurnRejected(UserFacingError):
    """The bot refuses a turn before the model is asked; `user_message` says why."""

    user_message: str = Sentence("I cannot take that message.")

    def __init__(self, user_message: str | None = None) -> None:
        if user_message is not None:
            self.user_message = user_message
        super().__init__(self.user_message)


class FileTooLarge(TurnRejected):
    user_message = Sentence("That file is too large: Telegram lets bots download at most 20 MB.")


class UnsupportedMessage(TurnRejected):
    user_message = Sentence(
        "I can read text, photos, voice notes, audio, videos, GIFs, stickers, PDFs and text files."
    )


class InputTooLong(TurnRejected):
    user_message = Sentence("That message is too long for me.")


class RateLimited(TurnRejected):
    user_message = Sentence("You are sending messages too quickly. Please wait a moment.")


class DailyQuotaReached(TurnRejected):
    user_message = Sentence("You have reached today's message limit. Please come back tomorrow.")


class QueueFull(TurnRejected):
    user_message = Sentence(
        "I am still answering your earlier message; send this one again afterwards."
    )


class NothingToRetry(TurnRejected):
    user_message = Sentence("There is no earlier message to answer again.")


class MediaUnavailable(TurnRejected):
    user_message = Sentence("I could not download that file from Telegram. Please send it again.")


class StoreStillUnavailable(TurnRejected):
    """The database stayed unusable (locked, full, out of reach) for as long as the bot
    waits for it: the turn was not stored, so its sender is asked to send it again."""

    user_message = Sentence(
        "I could not save your message: my database is not available right now. "
        "Please send it again in a minute."
    )

    def __init__(self, problem: StoreUnavailable, waited: float) -> None:
        super().__init__()
        self.problem = problem
        self.waited = waited


class HistoryUnavailable(TurnRejected):
    """The turn is stored, but the conversation could not be read back to answer it."""

    user_message = Sentence(
        "I saved your message, but my database is not available right now, so I cannot "
        "answer yet. Send /retry in a minute."
    )
