"""The kinds of media Phi-4 takes, and how sentences users read name them."""

from __future__ import annotations

from typing import Literal

from bot.shared.i18n import Sentence

MediaKind = Literal["image", "audio"]

MediaForm = Literal[
    "image", "audio", "video", "video_note", "animation", "video_sticker", "pdf", "text"
]
"""What a file is before it is prepared: it decides which decoder turns it into images,
audio and text (a video gives frames and sound, a PDF text and page images)."""


def media_nouns(kinds: frozenset[MediaKind]) -> Sentence:
    """'images', 'audio' or 'images or audio', for sentences users read."""
    if kinds == {"image"}:
        return Sentence("images")
    if kinds == {"audio"}:
        return Sentence("audio")
    return Sentence("images or audio")


def describe_accepts(accepts: frozenset[MediaKind]) -> Sentence:
    """'text only' / 'text and images' / 'text and audio' / 'text, images and audio'."""
    if not accepts:
        return Sentence("text only")
    if accepts == {"image"}:
        return Sentence("text and images")
    if accepts == {"audio"}:
        return Sentence("text and audio")
    return Sentence("text, images and audio")
