"""Finds the media in a Telegram message and downloads it as attachments Phi-4 can take."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Literal

from telegram import Bot, Message
from telegram.error import BadRequest, NetworkError, TimedOut

from bot import metrics
from bot.conversation.errors import FileTooLarge, MediaUnavailable, UnsupportedMessage
from bot.conversation.turns import MediaRef
from bot.media import MediaTooLong, decode_audio_to_wav_async, media_kind, prepare_image
from storage import NewAttachment

log = logging.getLogger(__name__)

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
DOWNLOAD_ATTEMPTS = 3


def media_of(message: Message) -> list[MediaRef]:
    """The message's photo/voice/audio/image-or-audio document, or `UnsupportedMessage`.

    Only the largest photo size is taken. A message with none of these and no text
    (a sticker, a video, a location) is unsupported.
    """
    if message.photo:
        size = message.photo[-1]
        name = f"photo_{message.message_id}.jpg"
        return [MediaRef("image", size.file_id, size.file_size, "image/jpeg", name)]
    if message.voice:
        v = message.voice
        name = f"voice_{message.message_id}.ogg"
        mime = v.mime_type or "audio/ogg"
        return [MediaRef("audio", v.file_id, v.file_size, mime, name, _seconds(v.duration))]
    if message.audio:
        a = message.audio
        name = a.file_name or f"audio_{message.message_id}"
        return [MediaRef("audio", a.file_id, a.file_size, a.mime_type, name, _seconds(a.duration))]
    if message.document:
        d = message.document
        kind = media_kind(d.mime_type, d.file_name)
        if kind is None:
            raise UnsupportedMessage()
        name = d.file_name or f"file_{message.message_id}"
        return [MediaRef(kind, d.file_id, d.file_size, d.mime_type, name)]
    unsupported = (
        message.video,
        message.video_note,
        message.animation,
        message.sticker,
        message.location,
        message.contact,
        message.poll,
        message.dice,
    )
    if any(item is not None for item in unsupported):
        raise UnsupportedMessage()
    if message.text or message.caption:
        return []
    raise UnsupportedMessage()


def _seconds(duration: int | timedelta) -> float:
    """PTB gives durations as int seconds, or as timedelta when PTB_TIMEDELTA is set."""
    return duration.total_seconds() if isinstance(duration, timedelta) else float(duration)


def check_size(ref: MediaRef, cap: int) -> None:
    """Refuse before downloading: Telegram will not hand bots files over 20 MB."""
    limit = min(cap, TELEGRAM_DOWNLOAD_LIMIT)
    if ref.file_size is not None and ref.file_size > limit:
        mb = ref.file_size / (1024 * 1024)
        raise FileTooLarge(
            f"That file is {mb:.0f} MB; I can only take files up to {limit // (1024 * 1024)} MB."
        )


class MediaFetcher:
    """Downloads message media and prepares it: images verified, audio to 16 kHz WAV."""

    def __init__(self, bot: Bot, *, max_bytes: int, max_audio_seconds: float) -> None:
        self._bot = bot
        self._max_bytes = max_bytes
        self._max_audio_seconds = max_audio_seconds

    async def fetch(self, refs: Sequence[MediaRef]) -> list[NewAttachment]:
        for ref in refs:
            check_size(ref, self._max_bytes)
        return list(await asyncio.gather(*(self._fetch_one(ref) for ref in refs)))

    async def _fetch_one(self, ref: MediaRef) -> NewAttachment:
        if (
            ref.kind == "audio"
            and ref.duration is not None
            and ref.duration > self._max_audio_seconds
        ):
            raise MediaTooLong(ref.duration, self._max_audio_seconds)
        data = await self._download(ref)
        return await prepare_attachment(ref, data, self._max_audio_seconds)

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


async def prepare_attachment(ref: MediaRef, data: bytes, max_audio_seconds: float) -> NewAttachment:
    """Images pass verified (re-encoded only if Phi-4 cannot read the format); audio → WAV.

    The time it takes is recorded in `phi4bot_media_decode_seconds`.
    """
    started = time.perf_counter()
    try:
        return await _prepare(ref, data, max_audio_seconds)
    finally:
        metrics.observe_media_decode(ref.kind, time.perf_counter() - started)


async def _prepare(ref: MediaRef, data: bytes, max_audio_seconds: float) -> NewAttachment:
    kind: Literal["image", "audio"] = ref.kind
    if kind == "image":
        image = await asyncio.to_thread(prepare_image, data, filename=ref.filename)
        name = image.filename or ref.filename
        return NewAttachment("image", image.mime_type, image.data, name, ref.file_id)
    decoded = await decode_audio_to_wav_async(data, max_seconds=max_audio_seconds)
    stem = ref.filename.rsplit(".", 1)[0] or "audio"
    return NewAttachment("audio", "audio/wav", decoded.wav, f"{stem}.wav", ref.file_id)
