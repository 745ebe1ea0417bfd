"""The prompt the model reads: stored history as a `Conversation`, and the chat's settings."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from bot.phi4.conversation import Attachment, Conversation, Turn
from storage import HistoryTurn


class ChatSetting(StrEnum):
    """Names of the per-chat settings rows the bot keeps."""

    SYSTEM_PROMPT = "system_prompt"
    SPEECH_NOTICE = "speech_notice"
    """Set once the chat was told that speech outside Phi-4's languages may be misheard."""
    ADMIN_LANGUAGE = "admin_language"
    """In an admin's private chat: the Telegram language of their last message, so a notice
    sent before they write again (at the next start, say) is in it."""


PLACEHOLDERS: dict[str, str] = {"image": "[image]", "audio": "[audio]"}

CONTINUE_PROMPT = (
    "Continue exactly where your previous answer stopped, without repeating any of it."
)
"""The turn /continue and the Continue button add: the model sees its cut answer in the
history, then this request, and writes the rest as a new message."""


def build_conversation(
    history: Sequence[HistoryTurn], *, system_prompt: str | None, label_senders: bool
) -> Conversation:
    """Map stored turns to model turns.

    In groups (`label_senders`) each user turn is prefixed with its sender's name so the
    model can tell speakers apart. Media the store left out of the history (beyond the
    recent-media limit) becomes a short text placeholder, so the model still knows that
    something was shown.
    """
    turns: list[Turn] = []
    for item in history:
        text = item.text
        attachments: list[Attachment] = []
        for stored in item.attachments:
            if stored.data is None:
                text = f"{text} {PLACEHOLDERS[stored.kind]}".strip()
            else:
                attachments.append(Attachment(stored.data, stored.mime_type, stored.filename))
        if item.role == "user" and label_senders and item.sender_name:
            text = f"{item.sender_name}: {text}" if text else f"{item.sender_name}:"
        turns.append(Turn(item.role, text, tuple(attachments)))
    return Conversation(tuple(turns), system_prompt=system_prompt or None)
