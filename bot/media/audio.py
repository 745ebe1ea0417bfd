"""Decodes any audio Telegram delivers into the 16 kHz mono 16-bit WAV every backend accepts."""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer

from bot.media.errors import MediaError, UnreadableMedia
from bot.media.wav16k import TARGET_RATE, Wav16kWriter
from bot.shared import Sentence

# Only the demuxers real audio files need ("mov" is mp4/m4a): a file that claims to be
# a playlist or a concatenation script must not make FFmpeg open anything else.
_DEMUXERS = "ogg,mp3,mov,wav,flac,aac,matroska"

# Codec delay and container rounding make honest files overshoot by a few milliseconds.
_SLACK_SECONDS = 0.1

_MAX_BAD_PACKETS = 32

_DAMAGED = Sentence("That audio file is damaged, so I could not listen to it.")

_CANNOT_OPEN = Sentence(
    "I could not read that audio file. It may be damaged, or in a format I do not know "
    "(I take OGG/Opus voice notes, MP3, M4A, WAV and FLAC)."
)


@dataclass(frozen=True)
class DecodedAudio:
    """A recording as Phi-4 reads it: 16 kHz, mono, 16-bit PCM WAV, and its length."""

    wav: bytes
    duration: float


def _span(seconds: int) -> Sentence:
    minutes, rest = divmod(seconds, 60)
    if minutes == 0:
        return Sentence("{seconds} s", seconds=rest)
    if rest == 0:
        return Sentence("{minutes} min", minutes=minutes)
    return Sentence("{minutes} min {seconds} s", minutes=minutes, seconds=rest)


class MediaTooLong(MediaError):
    """Audio over the length limit; the sentence gives both lengths so the user knows the cut.

    `duration` is None when the file hid its length and decoding stopped at the limit;
    `decoded_seconds` says how much audio was decoded before refusing (0 when the
    container's own duration was enough to refuse).
    """

    user_message = Sentence("That recording is too long for me.")

    def __init__(
        self, duration: float | None, limit: float, *, decoded_seconds: float = 0.0
    ) -> None:
        self.duration = duration
        self.limit = limit
        self.decoded_seconds = decoded_seconds
        allowed = _span(math.floor(limit))
        if duration is None:
            message = Sentence(
                "That recording is longer than the {allowed} I can listen to.", allowed=allowed
            )
        else:
            # Rounded, but never shown as within the limit it was refused for.
            shown = max(round(duration), math.floor(limit) + 1)
            message = Sentence(
                "That recording is {length} long; I can listen to at most {allowed}.",
                length=_span(shown),
                allowed=allowed,
            )
        super().__init__(f"audio of {duration} s over the {limit} s limit", user_message=message)


def _open(data: bytes) -> InputContainer:
    try:
        return av.open(
            io.BytesIO(data),
            mode="r",
            container_options={"format_whitelist": _DEMUXERS},
            metadata_errors="replace",
        )
    except av.FFmpegError as exc:
        raise UnreadableMedia(f"cannot open audio: {exc}", user_message=_CANNOT_OPEN) from exc


def _audio_stream(container: InputContainer) -> AudioStream:
    if not container.streams.audio:
        raise UnreadableMedia(
            "no audio stream",
            user_message=Sentence("That file has no sound in it that I can find."),
        )
    return container.streams.audio[0]


def _declared_seconds(container: InputContainer, stream: AudioStream) -> float | None:
    """The length the file states, if it states one; it may lie, so decoding checks too."""
    if stream.duration is not None and stream.duration > 0 and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def _frames(container: InputContainer, stream: AudioStream) -> Iterator[AudioFrame]:
    """Decoded frames, skipping a few undecodable packets the way players do.

    A glitch (a stray tag between concatenated MP3s, a damaged Ogg page) should not cost
    the whole recording; a file that is mostly garbage is refused before it costs much.
    """
    bad_packets = 0
    for packet in container.demux(stream):
        try:
            frames = stream.codec_context.decode(packet)
        except av.FFmpegError as exc:
            bad_packets += 1
            if bad_packets > _MAX_BAD_PACKETS:
                raise UnreadableMedia(
                    f"too many bad packets: {exc}", user_message=_DAMAGED
                ) from exc
            continue
        for frame in frames:
            if frame.samples == 0:
                continue
            if frame.sample_rate <= 0:
                raise UnreadableMedia("audio frame without a sample rate", user_message=_DAMAGED)
            yield frame


def decode_audio_to_wav(data: bytes, *, max_seconds: float) -> DecodedAudio:
    """Decode from memory and resample to 16 kHz mono WAV, refusing anything over the limit.

    The limit is checked against the container's stated length before decoding, then
    against the audio actually decoded, so a file that understates its length still costs
    at most `max_seconds` of decoding.
    """
    if max_seconds <= 0:
        raise ValueError("max_seconds must be positive")
    if not data:
        raise UnreadableMedia("empty audio", user_message=Sentence("That audio file is empty."))
    with _open(data) as container:
        stream = _audio_stream(container)
        declared = _declared_seconds(container, stream)
        cap = max_seconds + _SLACK_SECONDS
        if declared is not None and declared > cap:
            raise MediaTooLong(declared, max_seconds)
        writer = Wav16kWriter()
        decoded = 0.0
        try:
            for frame in _frames(container, stream):
                decoded += frame.samples / frame.sample_rate
                if decoded > cap:
                    raise MediaTooLong(None, max_seconds, decoded_seconds=decoded)
                writer.add(frame)
            wav = writer.finish()
        except av.FFmpegError as exc:
            raise UnreadableMedia(f"cannot decode audio: {exc}", user_message=_DAMAGED) from exc
        finally:
            writer.close()
    if writer.samples == 0:
        raise UnreadableMedia(
            "no audio decoded",
            user_message=Sentence("That audio file has no sound I could decode."),
        )
    return DecodedAudio(wav=wav, duration=writer.samples / TARGET_RATE)


async def decode_audio_to_wav_async(data: bytes, *, max_seconds: float) -> DecodedAudio:
    """`decode_audio_to_wav` in a worker thread, so a long recording never stalls the loop."""
    return await asyncio.to_thread(decode_audio_to_wav, data, max_seconds=max_seconds)
