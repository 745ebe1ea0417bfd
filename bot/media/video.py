"""Turns a video (a video note, a GIF, a video sticker) into a few frames and its sound track.

Frames are picked evenly over the video's real length, found by reading the packet index
(cheap: nothing is decoded) rather than trusting the length the file or Telegram states;
each is reached by seeking to the key frame before it and decoding forward under a budget
of decoded pixels, so a long gap between key frames costs a slightly early frame, not time.
Each frame then goes through `prepare_image`, exactly like a photo.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import av
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from bot.media.audio import DecodedAudio, MediaTooLong, decode_audio_to_wav
from bot.media.errors import UnreadableMedia, UnreadableVideo, VideoTooLarge, VideoTooLong
from bot.media.image import PreparedImage, prepare_image

log = logging.getLogger(__name__)

# MP4/MOV/3GP (every video Telegram makes, GIFs included) and Matroska/WebM (video stickers,
# files from browsers); nothing that could make FFmpeg open another file or URL.
_DEMUXERS = "mov,matroska"

SECONDS_PER_FRAME = 2.0
"""One frame per this much video, up to the caller's maximum: a 3 s clip gives 2 frames."""

MAX_VIDEO_PIXELS = 4096 * 4096
"""Frames larger than this (beyond 4K) are refused before anything is decoded."""

DECODE_PIXEL_BUDGET = 200_000_000
"""Pixels decoded in all to find the frames (about 220 frames of 720p): the time bound."""

_SLACK_SECONDS = 0.5
_JPEG_QUALITY = 90


@dataclass(frozen=True)
class DecodedVideo:
    """What the model gets from a video: its frames as images, and its sound if it has any."""

    frames: tuple[PreparedImage, ...]
    audio: DecodedAudio | None
    duration: float


@dataclass(frozen=True)
class _Index:
    """What reading the packets told: the real length and where the key frames are."""

    start: float
    duration: float
    keyframes: tuple[float, ...]


def frame_count(duration: float, most: int) -> int:
    """How many frames to show of a video this long: scaled by length, at least one."""
    return max(1, min(most, math.ceil(duration / SECONDS_PER_FRAME)))


def _open(data: bytes) -> InputContainer:
    try:
        return av.open(
            io.BytesIO(data),
            mode="r",
            container_options={"format_whitelist": _DEMUXERS},
            metadata_errors="replace",
        )
    except av.FFmpegError as exc:
        raise UnreadableVideo(f"cannot open video: {exc}") from exc


def _declared_seconds(container: InputContainer, stream: VideoStream) -> float | None:
    if stream.duration and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _index(container: InputContainer, stream: VideoStream, max_seconds: float) -> _Index:
    """Walk the video's packets (demuxing only) to learn its true length, stopping as soon
    as it passes the limit: a file that understates its length is caught here."""
    time_base = stream.time_base
    if time_base is None:
        raise UnreadableVideo("video stream without a time base")
    start: float | None = None
    end = 0.0
    keyframes: list[float] = []
    for packet in container.demux(stream):
        if packet.pts is None:
            continue
        at = float(packet.pts * time_base)
        if start is None or at < start:
            start = at
        end = max(end, at + float((packet.duration or 0) * time_base))
        if packet.is_keyframe:
            keyframes.append(at)
        if end - start > max_seconds + _SLACK_SECONDS:
            raise VideoTooLong(None, max_seconds)
    if start is None:
        raise UnreadableVideo("no video packets")
    return _Index(start, end - start, tuple(sorted(keyframes)) or (start,))


def _decoded(container: InputContainer, stream: VideoStream) -> Iterator[VideoFrame]:
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue  # a damaged packet costs its frame, as in players
        for frame in frames:
            if isinstance(frame, VideoFrame):
                yield frame


def _grab(
    container: InputContainer, stream: VideoStream, index: _Index, count: int
) -> list[VideoFrame]:
    """The frame nearest each of `count` evenly spaced moments (at or just before it)."""
    assert stream.time_base is not None
    per_frame = max(1, stream.codec_context.width * stream.codec_context.height)
    allowance = max(1, DECODE_PIXEL_BUDGET // (per_frame * count))
    step = index.duration / count
    grabbed: list[VideoFrame] = []
    frames: Iterator[VideoFrame] | None = None
    position: float | None = None
    for n in range(count):
        target = index.start + step * (n + 0.5)
        key = max((k for k in index.keyframes if k <= target), default=index.keyframes[0])
        if frames is None or position is None or position > target or key > position:
            container.seek(round(key / stream.time_base), stream=stream, backward=True)
            frames, position = _decoded(container, stream), None
        chosen: VideoFrame | None = None
        for spent, frame in enumerate(frames, start=1):
            if frame.width * frame.height > MAX_VIDEO_PIXELS:  # the header understated it
                raise VideoTooLarge(frame.width, frame.height)
            chosen = frame
            position = frame.time
            if position is None or position + step / 4 >= target or spent >= allowance:
                break
        else:
            frames = None  # the stream ended: the next moment seeks afresh
        if chosen is not None and (not grabbed or chosen.pts != grabbed[-1].pts):
            grabbed.append(chosen)
    return grabbed


def _as_image(frame: VideoFrame, filename: str) -> PreparedImage:
    out = io.BytesIO()
    frame.to_image().save(out, "JPEG", quality=_JPEG_QUALITY)  # type: ignore[no-untyped-call]
    return prepare_image(out.getvalue(), filename=filename)


def _sound(data: bytes, max_seconds: float) -> DecodedAudio | None:
    """The sound track as WAV; a damaged one is left out, since the frames still tell much."""
    try:
        return decode_audio_to_wav(data, max_seconds=max_seconds)
    except MediaTooLong as exc:
        raise VideoTooLong(exc.duration, max_seconds) from exc
    except UnreadableMedia as exc:
        log.info("the sound of a video is left out: %s", exc)
        return None


def decode_video(
    data: bytes,
    *,
    max_seconds: float,
    max_frames: int,
    sound_seconds: float | None = None,
    stem: str = "video",
) -> DecodedVideo:
    """Frames (at most `max_frames`, fewer for a short video) and, when `sound_seconds` is
    given and the file has a sound track, the sound as 16 kHz WAV (at most that long).

    Refuses a video longer than `max_seconds` by its stated length before decoding, and by
    its packets' timestamps before decoding any frame.
    """
    if not data:
        raise UnreadableVideo("empty video")
    try:
        with _open(data) as container:
            has_sound = bool(container.streams.audio)
            if not container.streams.video:
                if not has_sound or sound_seconds is None:
                    raise UnreadableVideo("no video stream")
                sound = _sound(data, min(sound_seconds, max_seconds))
                if sound is None:
                    raise UnreadableVideo("no video stream and no readable sound")
                return DecodedVideo((), sound, sound.duration)
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > MAX_VIDEO_PIXELS:
                raise VideoTooLarge(width, height)
            declared = _declared_seconds(container, stream)
            if declared is not None and declared > max_seconds + _SLACK_SECONDS:
                raise VideoTooLong(declared, max_seconds)
            index = _index(container, stream, max_seconds)
            stream.codec_context.thread_type = "AUTO"
            grabbed = _grab(container, stream, index, frame_count(index.duration, max_frames))
            frames = tuple(
                _as_image(frame, f"{stem}_frame{n + 1}.jpg") for n, frame in enumerate(grabbed)
            )
    except av.FFmpegError as exc:
        raise UnreadableVideo(f"cannot decode video: {exc}") from exc
    if not frames:
        raise UnreadableVideo("no frame decoded")
    audio = None
    if has_sound and sound_seconds is not None:
        audio = _sound(data, min(sound_seconds, max_seconds))
    return DecodedVideo(frames, audio, index.duration)


async def decode_video_async(
    data: bytes,
    *,
    max_seconds: float,
    max_frames: int,
    sound_seconds: float | None = None,
    stem: str = "video",
) -> DecodedVideo:
    """`decode_video` in a worker thread, so the event loop never waits on FFmpeg."""
    return await asyncio.to_thread(
        decode_video,
        data,
        max_seconds=max_seconds,
        max_frames=max_frames,
        sound_seconds=sound_seconds,
        stem=stem,
    )
