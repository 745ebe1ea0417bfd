"""Builds real media in memory (pictures, tones in each audio format) for tests and benches."""

from __future__ import annotations

import array
import io
import math
import random
import struct
import wave
import zlib

import av
from PIL import Image

Color = tuple[int, int, int]

TONE_AMPLITUDE = 12_000


def make_image(
    image_format: str, width: int = 64, height: int = 48, color: Color = (200, 40, 30)
) -> bytes:
    """A solid-colour picture saved by Pillow as `image_format` (JPEG, PNG, GIF, WEBP, BMP...)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, image_format)
    return out.getvalue()


def make_noisy_image(
    image_format: str, width: int = 200, height: int = 150, seed: int = 0
) -> bytes:
    """Random pixels, so the compressed stream is long and a cut anywhere damages the picture."""
    pixels = random.Random(seed).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, image_format)
    return out.getvalue()


def make_png(width: int = 64, height: int = 48, color: Color = (200, 40, 30)) -> bytes:
    return make_image("PNG", width, height, color)


def make_jpeg(width: int = 64, height: int = 48, color: Color = (200, 40, 30)) -> bytes:
    return make_image("JPEG", width, height, color)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def make_png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit black PNG of any size, built row by row: tiny on disk, huge once decoded."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = bytes(1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    rows_per_chunk = max(1, (1 << 20) // len(row))
    compressed = []
    for start in range(0, height, rows_per_chunk):
        compressed.append(packer.compress(row * min(rows_per_chunk, height - start)))
    compressed.append(packer.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(compressed))
        + _png_chunk(b"IEND", b"")
    )


def tone_pcm(seconds: float, freq: float = 440.0, sample_rate: int = 16_000) -> bytes:
    """Mono signed 16-bit samples of a sine tone."""
    count = round(seconds * sample_rate)
    step = 2 * math.pi * freq / sample_rate
    samples = array.array("h", (round(TONE_AMPLITUDE * math.sin(step * i)) for i in range(count)))
    return samples.tobytes()


def _encode(
    codec: str,
    container_format: str,
    seconds: float,
    freq: float,
    sample_rate: int,
    channels: int = 1,
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
) -> bytes:
    """Encode a tone with PyAV's bundled FFmpeg, feeding it 0.1 s at a time."""
    layout = "mono" if channels == 1 else "stereo"
    period = tone_pcm(1.0, freq, sample_rate)  # whole-Hz tones repeat every second
    if channels == 2:
        period = b"".join(period[i : i + 2] * 2 for i in range(0, len(period), 2))
    looped = period * 2
    bytes_per_sample = 2 * channels
    total = round(seconds * sample_rate)
    chunk = sample_rate // 10
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=sample_rate, layout=layout, options=options or {})
        assert isinstance(stream, av.AudioStream)
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        done = 0
        while done < total:
            count = min(chunk, total - done)
            offset = (done % sample_rate) * bytes_per_sample
            frame = av.AudioFrame(format="s16", layout=layout, samples=count)
            frame.planes[0].update(looped[offset : offset + count * bytes_per_sample])
            frame.sample_rate = sample_rate
            frame.pts = done
            container.mux(stream.encode(frame))
            done += count
        container.mux(stream.encode(None))
    return out.getvalue()


def make_ogg_opus(seconds: float, freq: float = 440.0, sample_rate: int = 48_000) -> bytes:
    """A voice note as Telegram sends it: Opus, mono, 48 kHz, speech mode, ~32 kbit/s, in Ogg."""
    return _encode(
        "libopus", "ogg", seconds, freq, sample_rate, bit_rate=32_000,
        options={"application": "voip"},
    )  # fmt: skip


def make_mp3(seconds: float, freq: float = 440.0, sample_rate: int = 44_100) -> bytes:
    return _encode("libmp3lame", "mp3", seconds, freq, sample_rate, bit_rate=128_000)


def make_m4a(seconds: float, freq: float = 440.0, sample_rate: int = 44_100) -> bytes:
    """AAC in the iPod/M4A flavour of MP4, as phones save voice memos."""
    return _encode("aac", "ipod", seconds, freq, sample_rate, bit_rate=128_000)


def make_flac(seconds: float, freq: float = 440.0, sample_rate: int = 44_100) -> bytes:
    return _encode("flac", "flac", seconds, freq, sample_rate)


def make_ogg_vorbis(seconds: float, freq: float = 440.0, sample_rate: int = 44_100) -> bytes:
    """Stereo: FFmpeg's own Vorbis encoder (the only one bundled, flagged experimental)
    refuses mono."""
    return _encode(
        "vorbis", "ogg", seconds, freq, sample_rate, channels=2,
        options={"strict": "experimental"},
    )  # fmt: skip


def make_wav(
    seconds: float, freq: float = 440.0, sample_rate: int = 44_100, channels: int = 1
) -> bytes:
    """16-bit PCM WAV via the standard library; stereo duplicates the tone on both channels."""
    pcm = tone_pcm(seconds, freq, sample_rate)
    if channels == 2:
        pcm = b"".join(pcm[i : i + 2] * 2 for i in range(0, len(pcm), 2))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return out.getvalue()


def make_silent_video() -> bytes:
    """A one-frame Matroska video with no audio track: what a video sent as audio looks like."""
    out = io.BytesIO()
    with av.open(out, "w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuvj420p"
        frame = av.VideoFrame(16, 16, "yuvj420p")
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def corrupted_ogg() -> bytes:
    """The first page of a real voice note (valid Ogg/Opus headers) followed by garbage."""
    voice = make_ogg_opus(2.0)
    first_page_end = voice.index(b"OggS", 4)
    return voice[:first_page_end] + _garbage(4096)


def _ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        crc &= 0xFFFFFFFF
    return crc


def ogg_with_false_duration(data: bytes, seconds: float, sample_rate: int = 48_000) -> bytes:
    """An Ogg file whose last page claims the stream ends after `seconds` (CRC kept valid).

    Demuxers read the duration from that page, so the container understates its length
    while every packet still decodes: the case a length cap must survive.
    """
    last = data.rindex(b"OggS")
    page = bytearray(data[last:])
    pre_skip = struct.unpack_from("<H", data, data.index(b"OpusHead") + 10)[0]
    struct.pack_into("<q", page, 6, round(seconds * sample_rate) + pre_skip)
    struct.pack_into("<I", page, 22, 0)
    struct.pack_into("<I", page, 22, _ogg_crc(bytes(page)))
    return data[:last] + bytes(page)


def _garbage(length: int, seed: int = 17) -> bytes:
    return bytes((i * 131 + seed) % 256 for i in range(length))


def with_garbage(data: bytes, at: float = 0.5, length: int = 300) -> bytes:
    """`data` with `length` bytes overwritten by garbage at fraction `at` of the file: a glitch."""
    start = int(len(data) * at)
    return data[:start] + _garbage(len(data[start : start + length])) + data[start + length :]


def m4a_with_damaged_frames(seconds: float, every: int = 7) -> bytes:
    """An M4A whose container is intact but whose AAC frames are scrambled (every n-th byte)."""
    data = bytearray(make_m4a(seconds))
    mdat = data.index(b"mdat")
    size = struct.unpack_from(">I", data, mdat - 4)[0]
    for i in range(mdat + 4, mdat - 4 + size, every):
        data[i] = (i * 151) & 0xFF
    return bytes(data)
