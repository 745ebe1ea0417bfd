"""Turns downloaded bytes into media Phi-4 takes: 16 kHz WAV audio and verified images.

Decoding and checking only: nothing here knows Telegram, the model client or the database.
It may import `bot.shared`, nothing else of `bot/`; the model client and the Telegram
adapter both use it.
"""

from __future__ import annotations

from bot.media.audio import (
    DecodedAudio,
    MediaTooLong,
    decode_audio_to_wav,
    decode_audio_to_wav_async,
)
from bot.media.errors import MediaError, UnreadableMedia
from bot.media.image import (
    MAX_IMAGE_PIXELS,
    PreparedImage,
    prepare_image,
    prepare_image_async,
)
from bot.media.sniff import media_kind, sniff_media

__all__ = [
    "MAX_IMAGE_PIXELS",
    "DecodedAudio",
    "MediaError",
    "MediaTooLong",
    "PreparedImage",
    "UnreadableMedia",
    "decode_audio_to_wav",
    "decode_audio_to_wav_async",
    "media_kind",
    "prepare_image",
    "prepare_image_async",
    "sniff_media",
]
