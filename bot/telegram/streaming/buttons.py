"""Inline buttons under a reply, as plain values: what the last message of an answer offers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Button:
    """One inline button: the label shown and the callback data Telegram sends back."""

    label: str
    data: str


# One row of buttons; empty when the message carries none.
Keyboard = tuple[Button, ...]
NO_BUTTONS: Keyboard = ()
