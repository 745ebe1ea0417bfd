"""The kinds of media Phi-4 takes, and how sentences users read name them."""

from __future__ import annotations

from typing import Literal

MediaKind = Literal["image", "audio"]

MEDIA_NOUNS: dict[MediaKind, str] = {"image": "images", "audio": "audio"}


def media_nouns(kinds: frozenset[MediaKind], joiner: str = " or ") -> str:
    """'images', 'audio' or 'images or audio', for sentences users read."""
    return joiner.join(MEDIA_NOUNS[k] for k in ("image", "audio") if k in kinds)


def describe_accepts(accepts: frozenset[MediaKind]) -> str:
    """'text only' / 'text and images' / 'text and audio' / 'text, images and audio'."""
    if not accepts:
        return "text only"
    if len(accepts) == 1:
        return f"text and {media_nouns(accepts)}"
    return "text, images and audio"
