"""Finds the media in a Telegram message and downloads it as attachments Phi-4 can take."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Protocol

from telegram import Bot, Message, Sticker
from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.warnings import PTBDeprecationWarning

from bot.conversation.errors import FileTooLarge, MediaUnavailable, UnsupportedMessage
from bot.conversation.turns import FetchedMedia, MediaRef
from bot.media import MediaTooLong
from bot.media.errors import VideoTooLong
from bot.media.sniff import document_form
from bot.shared import MediaForm, MediaKind
from bot.telegram.preparation import MediaLimits, MediaPreparer

log = logging.getLogger(__name__)

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
DOWNLOAD_ATTEMPTS = 3


def media_of(message: Message) -> list[MediaRef]:
    """What the message holds for the model, or `UnsupportedMessage`.

    Photos (the largest size), voice notes, audio, video notes, videos, GIFs (`animation`,
    an MP4 in Telegram), stickers (a static one as an image, a video one as one frame; an
    animated one holds nothing to download: its emoji is the text) and documents that are
    images, audio, video, PDFs or text. Locations, polls and other kinds are unsupported.
    """
    n = message.message_id
    if message.photo:
        size = message.photo[-1]
        return [MediaRef("image", size.file_id, size.file_size, "image/jpeg", f"photo_{n}.jpg")]
    if message.voice:
        v = message.voice
        mime = v.mime_type or "audio/ogg"
        return [MediaRef("audio", v.file_id, v.file_size, mime, f"voice_{n}.ogg", _seconds(v))]
    if message.audio:
        a = message.audio
        name = a.file_name or f"audio_{n}"
        return [MediaRef("audio", a.file_id, a.file_size, a.mime_type, name, _seconds(a))]
    if message.video_note:
        vn = message.video_note
        return [
            _video(
                vn.file_id,
                vn.file_size,
                "video/mp4",
                f"video_note_{n}.mp4",
                _seconds(vn),
                "video_note",
            )
        ]
    if message.video:
        v2 = message.video
        name = v2.file_name or f"video_{n}.mp4"
        return [_video(v2.file_id, v2.file_size, v2.mime_type, name, _seconds(v2), "video")]
    if message.animation:
        an = message.animation
        name = an.file_name or f"gif_{n}.mp4"
        return [_video(an.file_id, an.file_size, an.mime_type, name, _seconds(an), "animation")]
    if message.sticker:
        return _sticker(message.sticker, n)
    if message.document:
        d = message.document
        form = document_form(d.mime_type, d.file_name)
        if form is None:
            raise UnsupportedMessage()
        name = d.file_name or f"file_{n}"
        kind: MediaKind | None = form if form in ("image", "audio") else None
        if form == "video":
            kind = "image"
        return [MediaRef(kind, d.file_id, d.file_size, d.mime_type, name, form=form)]
    unsupported = (message.location, message.contact, message.poll, message.dice)
    if any(item is not None for item in unsupported):
        raise UnsupportedMessage()
    if message.text or message.caption:
        return []
    raise UnsupportedMessage()


def _video(
    file_id: str,
    size: int | None,
    mime: str | None,
    name: str,
    seconds: float | None,
    form: MediaForm,
) -> MediaRef:
    return MediaRef("image", file_id, size, mime or "video/mp4", name, seconds, form)


def _sticker(sticker: Sticker, n: int) -> list[MediaRef]:
    if sticker.is_animated:
        return []  # Lottie vector animation: the emoji says what it shows
    if sticker.is_video:
        return [
            _video(
                sticker.file_id,
                sticker.file_size,
                "video/webm",
                f"sticker_{n}.webm",
                None,
                "video_sticker",
            )
        ]
    return [
        MediaRef("image", sticker.file_id, sticker.file_size, "image/webp", f"sticker_{n}.webp")
    ]


class _Timed(Protocol):
    @property
    def duration(self) -> int | timedelta: ...


def _seconds(media: _Timed) -> float:
    """The declared duration in seconds, whichever type this PTB version hands out.

    PTB 22 gives int seconds with a deprecation warning, or a timedelta when `PTB_TIMEDELTA`
    is set; both are read here without the warning.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        duration = media.duration
    return duration.total_seconds() if isinstance(duration, timedelta) else float(duration)


def check_duration(ref: MediaRef, limits: MediaLimits) -> None:
    """Refuse before downloading what Telegram already says is too long (the decoders check
    the file's real length again: a stated length can be wrong)."""
    if ref.duration is None:
        return
    if ref.how == "audio" and ref.duration > limits.max_audio_seconds:
        raise MediaTooLong(ref.duration, limits.max_audio_seconds)
    if ref.how in ("video", "video_note", "animation") and ref.duration > limits.max_video_seconds:
        raise VideoTooLong(ref.duration, limits.max_video_seconds)


def check_size(ref: MediaRef, cap: int) -> None:
    """Refuse before downloading: Telegram will not hand bots files over 20 MB."""
    limit = min(cap, TELEGRAM_DOWNLOAD_LIMIT)
    if ref.file_size is not None and ref.file_size > limit:
        mb = ref.file_size / (1024 * 1024)
        raise FileTooLarge(
            f"That file is {mb:.0f} MB; I can only take files up to {limit // (1024 * 1024)} MB."
        )


class MediaFetcher:
    """Downloads message media and prepares it for the model (`preparation`)."""

    def __init__(
        self, bot: Bot, *, max_bytes: int, limits: MediaLimits, decode_concurrency: int = 2
    ) -> None:
        self._bot = bot
        self._max_bytes = max_bytes
        self._limits = limits
        self._preparer = MediaPreparer(limits, decode_concurrency)

    async def fetch(self, refs: Sequence[MediaRef]) -> FetchedMedia:
        for ref in refs:
            check_size(ref, self._max_bytes)
            check_duration(ref, self._limits)
        prepared = await asyncio.gather(*(self._fetch_one(ref) for ref in refs))
        return sum(prepared, FetchedMedia())

    async def _fetch_one(self, ref: MediaRef) -> FetchedMedia:
        data = await self._download(ref)
        return await self._preparer.prepare(ref, data)

    async def _download(self, ref: MediaRef) -> bytes:
        """getFile and the download, retried on network errors and 5xx (safe: they only read)."""
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                file = await self._bot.get_file(ref.file_id)
                if file.file_size is not None:
                    check_size(replace(ref, file_size=file.file_size), self._max_bytes)
                return bytes(await file.download_as_bytearray())
            except (NetworkError, TimedOut) as exc:
                if isinstance(exc, BadRequest) or attempt == DOWNLOAD_ATTEMPTS - 1:
                    log.warning("download of %s failed: %s", ref.filename, exc)
                    raise MediaUnavailable() from exc
                await asyncio.sleep(0.5 * 2**attempt)
        raise MediaUnavailable()
