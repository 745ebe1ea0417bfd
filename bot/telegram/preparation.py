"""Turns one downloaded file into what the model reads, by its form: images, WAV and text."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bot import metrics
from bot.conversation.turns import FetchedMedia, MediaRef
from bot.media import decode_audio_to_wav_async, prepare_image
from bot.media.image import MAX_SIDE
from bot.media.pdf import read_pdf_async
from bot.media.sticker import VIDEO_STICKER_FRAMES
from bot.media.text_file import inline_text_file_async
from bot.media.video import decode_video_async
from bot.shared import MediaForm
from storage import NewAttachment

FRAMES: dict[MediaForm, int] = {
    "video_note": 4,
    "video": 8,
    "animation": 8,
    "video_sticker": VIDEO_STICKER_FRAMES,
}
"""The most frames each kind of video gives (fewer for a short one: one per two seconds)."""

_WITH_SOUND: frozenset[MediaForm] = frozenset({"video", "video_note"})


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """How much of a file the bot reads (README's configuration table names each setting)."""

    max_audio_seconds: float = 300.0
    max_video_seconds: float = 120.0
    max_document_chars: int = 40_000
    max_pdf_pages: int = 8
    """Scanned pages rendered as images (0 when the backend takes no images)."""
    sound: bool = True
    """Whether videos bring their sound track (False when the backend takes no audio)."""
    image_max_side: int = MAX_SIDE
    """Longest side of a photo or image file given to the model; larger ones are scaled."""


async def prepare_attachment(ref: MediaRef, data: bytes, limits: MediaLimits) -> FetchedMedia:
    """Images pass verified (re-encoded only if Phi-4 cannot read the format, or scaled down
    past `image_max_side`); audio → WAV;
    videos → frames and WAV; PDFs → text and page images; text files → a fenced block.

    The time it takes is recorded in `phi4bot_media_decode_seconds`.
    """
    started = time.perf_counter()
    try:
        return await _prepare(ref, data, limits)
    finally:
        metrics.observe_media_decode(ref.how, time.perf_counter() - started)


class MediaPreparer:
    """`prepare_attachment` for every download of the bot, at most `concurrency` at once.

    Decoding a file costs tens of MB for a moment; an album of ten, or ten chats at once,
    must not cost ten times that: downloads run side by side, decodes take turns.
    """

    def __init__(self, limits: MediaLimits, concurrency: int = 2) -> None:
        self.limits = limits
        self._slots = asyncio.Semaphore(concurrency)

    async def prepare(self, ref: MediaRef, data: bytes) -> FetchedMedia:
        async with self._slots:
            return await prepare_attachment(ref, data, self.limits)


def _stem(ref: MediaRef, fallback: str) -> str:
    return ref.filename.rsplit(".", 1)[0] or fallback


async def _prepare(ref: MediaRef, data: bytes, limits: MediaLimits) -> FetchedMedia:
    how = ref.how
    if how == "image":
        image = await asyncio.to_thread(
            prepare_image, data, filename=ref.filename, max_side=limits.image_max_side
        )
        name = image.filename or ref.filename
        return FetchedMedia(
            (NewAttachment("image", image.mime_type, image.data, name, ref.file_id),)
        )
    if how == "audio":
        decoded = await decode_audio_to_wav_async(data, max_seconds=limits.max_audio_seconds)
        name = f"{_stem(ref, 'audio')}.wav"
        wav = NewAttachment("audio", "audio/wav", decoded.wav, name, ref.file_id)
        return FetchedMedia((wav,))
    if how == "pdf":
        document = await read_pdf_async(
            data,
            filename=ref.filename,
            max_chars=limits.max_document_chars,
            max_pages=limits.max_pdf_pages,
        )
        pages = tuple(
            NewAttachment("image", p.mime_type, p.data, p.filename or ref.filename)
            for p in document.pages
        )
        return FetchedMedia(pages, document.text)
    if how == "text":
        inlined = await inline_text_file_async(
            data, filename=ref.filename, max_chars=limits.max_document_chars
        )
        return FetchedMedia((), inlined.text)
    return await _video(ref, data, limits)


async def _video(ref: MediaRef, data: bytes, limits: MediaLimits) -> FetchedMedia:
    how = ref.how
    sound = limits.sound and how in _WITH_SOUND
    stem = _stem(ref, "video")
    video = await decode_video_async(
        data,
        max_seconds=limits.max_video_seconds,
        max_frames=FRAMES[how],
        sound_seconds=limits.max_audio_seconds if sound else None,
        stem=stem,
    )
    attachments = [
        NewAttachment("image", f.mime_type, f.data, f.filename or f"{stem}.jpg")
        for f in video.frames
    ]
    if video.audio is not None:
        attachments.append(NewAttachment("audio", "audio/wav", video.audio.wav, f"{stem}.wav"))
    return FetchedMedia(tuple(attachments))
