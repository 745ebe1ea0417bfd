"""Builds real media in memory (pictures, tones in each audio format) for tests and benches."""

from __future__ import annotations

import array
import io
import math
import random
import struct
import wave
import zlib
from typing import Any

import av
from PIL import Image, ImageChops

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


def make_photo(width: int, height: int, *, seed: int = 0, quality: int = 85) -> bytes:
    """A JPEG that compresses like a camera's photo (gradients under grain, about a byte for
    every 4 pixels), not like a flat test card; `seed` varies the grain."""
    gradient = Image.linear_gradient("L").resize((width, height))
    grain = Image.effect_noise((width, height), 24 + seed % 7)
    image = Image.merge(
        "RGB",
        (
            gradient,
            ImageChops.blend(gradient, grain, 0.5),
            ImageChops.blend(gradient.transpose(Image.Transpose.ROTATE_180), grain, 0.3),
        ),
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
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


def make_mp4(
    seconds: float,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 10,
    sound: bool = True,
    gop: int | None = None,
) -> bytes:
    """An H.264 video (a moving colour ramp) with an AAC tone when `sound`, as phones send."""
    out = io.BytesIO()
    frames = round(seconds * fps)
    with av.open(out, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if gop is not None:
            video.codec_context.gop_size = gop
        audio = container.add_stream("aac", rate=44_100, layout="mono") if sound else None
        shades = min(frames, 32)  # a few distinct pictures, reused: long videos stay quick
        pictures = [
            av.VideoFrame.from_image(
                Image.new("RGB", (width, height), (255 * k // max(1, shades - 1), 200, 80))
            ).reformat(format="yuv420p")
            for k in range(shades)
        ]
        for n in range(frames):
            frame = pictures[n * shades // frames]
            frame.pts = n
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None:
            _mux_tone(container, audio, seconds, 44_100)
    return out.getvalue()


def _mux_tone(container: Any, stream: Any, seconds: float, rate: int) -> None:
    pcm = tone_pcm(seconds, 440.0, rate)
    chunk = 1024
    total = len(pcm) // 2
    for done in range(0, total, chunk):
        count = min(chunk, total - done)
        frame = av.AudioFrame(format="s16", layout="mono", samples=count)
        frame.planes[0].update(pcm[done * 2 : (done + count) * 2])
        frame.sample_rate = rate
        frame.pts = done
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _pdf(objects: list[bytes], trailer_extra: bytes = b"") -> bytes:
    """A PDF file from its numbered objects (1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\n" % (len(objects) + 1, trailer_extra)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def make_text_pdf(pages: list[list[str]]) -> bytes:
    """A PDF whose pages carry the given lines as real text (Helvetica), as word processors
    export them: text a reader can select and extract."""
    count = len(pages)
    kids = b" ".join(b"%d 0 R" % (4 + 2 * n) for n in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for n, lines in enumerate(pages):
        shown = b"".join(
            b"BT /F1 12 Tf 72 %d Td %s Tj ET\n" % (760 - 16 * i, _pdf_string(line))
            for i, line in enumerate(lines)
        )
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * n)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(shown), shown))
    return _pdf(objects)


def make_scanned_pdf(
    colors: list[Color], width: int = 400, height: int = 560, resolution: float = 72.0
) -> bytes:
    """A PDF of page images only, no text layer: what a scanner or a phone scan app makes
    (`resolution` in dpi sets the page size: 1240×1754 pixels at 150 dpi is A4)."""
    images = [Image.new("RGB", (width, height), color) for color in colors]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=resolution)
    return out.getvalue()


def make_encrypted_pdf() -> bytes:
    """A PDF locked with a user password (standard security handler, RC4 40-bit): readers
    ask for the password before showing anything."""
    page = make_text_pdf([["secret"]])
    body, _, _ = page.partition(b"xref\n")
    objects = [
        match.split(b" obj\n", 1)[1].rsplit(b"\nendobj", 1)[0]
        for match in body.split(b"\nendobj\n")[:-1]
        if b" obj\n" in match
    ]
    objects.append(
        b"<< /Filter /Standard /V 1 /R 2 /P -44 /O <%s> /U <%s> >>" % ((b"ab" * 32), (b"cd" * 32))
    )
    file_id = b"<0123456789abcdef0123456789abcdef>"
    return _pdf(objects, b"/Encrypt %d 0 R /ID [%s %s] " % (len(objects), file_id, file_id))


def make_mkv(seconds: float, *, fps: int = 2, width: int = 64, height: int = 48) -> bytes:
    """A silent Matroska video (MJPEG frames), the container whose header states a length."""
    out = io.BytesIO()
    with av.open(out, "w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        for n in range(round(seconds * fps)):
            frame = av.VideoFrame.from_image(Image.new("RGB", (width, height), (n % 256, 0, 0)))
            frame.pts = n
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def mkv_with_false_duration(data: bytes, seconds: float) -> bytes:
    """A Matroska file whose Segment Info claims `seconds` (the default 1 ms timecode scale):
    what a player shows, while every frame of the real length still plays."""
    at = data.index(b"\x44\x89\x88")  # Duration element, an 8-byte float
    return data[: at + 3] + struct.pack(">d", seconds * 1000) + data[at + 11 :]


def make_webm_sticker(seconds: float = 1.0, size: int = 128, fps: int = 10) -> bytes:
    """A video sticker as Telegram stores one: VP9 in WebM, square, silent."""
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        stream = container.add_stream("libvpx-vp9", rate=fps, options={"deadline": "realtime"})
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for n in range(round(seconds * fps)):
            picture = Image.new("RGB", (size, size), (30, 60 + n * 10, 200))
            frame = av.VideoFrame.from_image(picture)
            frame.pts = n
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()
