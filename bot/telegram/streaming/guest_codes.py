"""What a guest message carries: button data naming its conversation, and the link to the
whole answer in a private chat.

A button press under a guest message names no chat (Telegram sends only the inline
message's id), so the button's own data says whose conversation it belongs to; and a
`/start` payload names the answer the link was under. Both are read back here, refusing
anything malformed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.conversation.turns import guest_key
from storage import ConversationKey

STOP = "stop"
REGENERATE = "regenerate"
_BUTTON = re.compile(r"g:(stop|regenerate):(-?\d{1,20}):(\d{1,20})")
_WHOLE = re.compile(r"g(-?\d{1,20})_(\d{1,20})_(\d{1,12})")
PREFIX = "g:"
"""Callback data of guest buttons starts so; other buttons' data never does."""


@dataclass(frozen=True, slots=True)
class GuestButton:
    """A press of Stop or Regenerate under the guest answer of `caller_id` in `chat_id`."""

    action: str
    chat_id: int
    caller_id: int

    @property
    def key(self) -> ConversationKey:
        return guest_key(self.chat_id, self.caller_id)


def button_data(action: str, chat_id: int, caller_id: int) -> str:
    """Callback data for a guest button (at most 64 bytes, as Telegram requires)."""
    return f"{PREFIX}{action}:{chat_id}:{caller_id}"


def read_button(data: str | None) -> GuestButton | None:
    found = _BUTTON.fullmatch(data or "")
    if found is None:
        return None
    return GuestButton(found[1], int(found[2]), int(found[3]))


@dataclass(frozen=True, slots=True)
class WholeAnswer:
    """Which answer a "continue in a private chat" link asks for: the one to the summon
    `message_id` by `caller_id` in `chat_id`."""

    chat_id: int
    caller_id: int
    message_id: int

    @property
    def key(self) -> ConversationKey:
        return guest_key(self.chat_id, self.caller_id)

    @property
    def payload(self) -> str:
        """The `/start` payload (Telegram allows 64 characters of A-Z, a-z, 0-9, _ and -)."""
        return f"g{self.chat_id}_{self.caller_id}_{self.message_id}"


def read_whole_answer(payload: str) -> WholeAnswer | None:
    found = _WHOLE.fullmatch(payload)
    if found is None:
        return None
    return WholeAnswer(int(found[1]), int(found[2]), int(found[3]))
