"""What a sticker says to the model: its emoji as text, and one frame of a video sticker."""

from __future__ import annotations

VIDEO_STICKER_FRAMES = 1
"""A video sticker is a short loop: one frame shows what it is."""


def sticker_text(emoji: str | None) -> str:
    """The words standing for a sticker in the turn, so the model knows what was sent."""
    return f"[Sticker {emoji}]" if emoji else "[Sticker]"
