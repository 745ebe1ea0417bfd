"""Media preparation: audio decoding to 16 kHz WAV, image verification and media sniffing."""

from __future__ import annotations

import array
import asyncio
import io
import wave
from collections.abc import Awaitable, Callable
from typing import TypeVar

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, features

from bot.media import (
    DecodedAudio,
    MediaTooLong,
    PreparedImage,
    decode_audio_to_wav,
    decode_audio_to_wav_async,
    media_kind,
    prepare_image,
    prepare_image_async,
    sniff_media,
)
from bot.media.errors import UnreadableMedia
from bot.media.sniff import KNOWN_TYPES
from bot.shared import UserFacingError
from tests.media_factory import (
    corrupted_ogg,
    m4a_with_damaged_frames,
    make_flac,
    make_image,
    make_jpeg,
    make_m4a,
    make_mp3,
    make_noisy_image,
    make_ogg_opus,
    make_ogg_vorbis,
    make_photo,
    make_png,
    make_png_bomb,
    make_silent_video,
    make_wav,
    ogg_with_false_duration,
    with_garbage,
)

T = TypeVar("T")

AUDIO_FACTORIES: dict[str, Callable[[float], bytes]] = {
    "ogg/opus voice note": make_ogg_opus,
    "mp3": make_mp3,
    "m4a/aac": make_m4a,
    "flac": make_flac,
    "ogg/vorbis stereo": make_ogg_vorbis,
    "wav 44.1 kHz": make_wav,
    "wav 22.05 kHz stereo": lambda s: make_wav(s, sample_rate=22_050, channels=2),
}


def read_wav(data: bytes) -> tuple[wave._wave_params, array.array[int]]:
    with wave.open(io.BytesIO(data)) as wav:
        params = wav.getparams()
        samples = array.array("h", wav.readframes(wav.getnframes()))
    return params, samples


def dominant_frequency(samples: array.array[int], rate: int) -> float:
    """A tone swings from high to low twice per period. Only swings past ±1000 count, timed
    from the first to the last, so codec padding (near-silence at the edges) cannot skew it."""
    swings, high, first, last = 0, None, 0, 0
    for index, sample in enumerate(samples):
        if (sample > 1000 and high is not True) or (sample < -1000 and high is not False):
            if high is None:
                first = index
            else:
                swings, last = swings + 1, index
            high = sample > 0
    return swings / 2 / ((last - first) / rate) if swings else 0.0


async def run_beside_ticker(work: Awaitable[T]) -> tuple[T, int]:
    """Await `work` while another task counts its turns; 0 turns means the loop was blocked."""
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    result = await work
    ticks_meanwhile = ticks
    done.set()
    await task
    return result, ticks_meanwhile


# --- audio -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", AUDIO_FACTORIES)
def test_every_audio_format_becomes_16khz_mono_16bit_wav_of_same_length_and_pitch(
    kind: str,
) -> None:
    decoded = decode_audio_to_wav(AUDIO_FACTORIES[kind](3.0), max_seconds=10)
    params, samples = read_wav(decoded.wav)
    assert (params.framerate, params.nchannels, params.sampwidth) == (16_000, 1, 2)
    assert decoded.duration == pytest.approx(3.0, abs=0.05)
    assert params.nframes / 16_000 == pytest.approx(decoded.duration)
    assert dominant_frequency(samples, 16_000) == pytest.approx(440.0, rel=0.005)


def test_a_glitch_midway_is_skipped_like_players_do() -> None:
    decoded = decode_audio_to_wav(with_garbage(make_mp3(3.0)), max_seconds=10)
    assert decoded.duration == pytest.approx(3.0, abs=0.1)


def test_concatenated_mp3s_at_different_rates_decode_whole_at_the_right_pitch() -> None:
    joined = make_mp3(2.0, sample_rate=44_100) + make_mp3(1.0, sample_rate=22_050)
    decoded = decode_audio_to_wav(joined, max_seconds=10)
    assert decoded.duration == pytest.approx(3.0, abs=0.1)
    # The silent encoder delay between the two parts lowers the average a little.
    assert dominant_frequency(read_wav(decoded.wav)[1], 16_000) == pytest.approx(440.0, rel=0.02)


def test_recording_exactly_at_the_limit_is_accepted() -> None:
    assert decode_audio_to_wav(make_ogg_opus(5.0), max_seconds=5).duration == pytest.approx(5.0)


@pytest.mark.parametrize("kind", AUDIO_FACTORIES)
def test_stated_length_over_the_limit_is_refused_before_decoding(kind: str) -> None:
    with pytest.raises(MediaTooLong) as refused:
        decode_audio_to_wav(AUDIO_FACTORIES[kind](12.0), max_seconds=5)
    assert refused.value.decoded_seconds == 0
    assert refused.value.duration == pytest.approx(12.0, abs=0.05)
    assert refused.value.user_message == "That recording is 12 s long; I can listen to at most 5 s."


def test_file_understating_its_length_is_cut_off_once_decoding_passes_the_limit() -> None:
    lying = ogg_with_false_duration(make_ogg_opus(60.0), 2.0)
    with av.open(io.BytesIO(lying)) as container:
        assert container.duration is not None and container.duration / av.time_base < 3
    with pytest.raises(MediaTooLong) as refused:
        decode_audio_to_wav(lying, max_seconds=5)
    assert 5 < refused.value.decoded_seconds < 5.2  # not the 60 s the file really holds
    assert refused.value.duration is None
    assert refused.value.user_message == "That recording is longer than the 5 s I can listen to."


@pytest.mark.parametrize(
    ("duration", "limit", "sentence"),
    [
        (360, 300, "That recording is 6 min long; I can listen to at most 5 min."),
        (330.4, 300, "That recording is 5 min 30 s long; I can listen to at most 5 min."),
        (300.3, 300, "That recording is 5 min 1 s long; I can listen to at most 5 min."),
        (None, 90, "That recording is longer than the 1 min 30 s I can listen to."),
    ],
)
def test_refusal_states_both_lengths_in_minutes_and_seconds(
    duration: float | None, limit: float, sentence: str
) -> None:
    error = MediaTooLong(duration, limit)
    assert isinstance(error, UserFacingError)
    assert error.user_message == sentence


@pytest.mark.parametrize(
    ("data", "sentence_part"),
    [
        (b"", "empty"),
        (corrupted_ogg(), "could not read"),
        (make_ogg_opus(3.0)[:3000], "could not read"),
        (make_png(), "could not read"),
        (make_silent_video(), "no sound"),
        (m4a_with_damaged_frames(5.0), "damaged"),
    ],
    ids=[
        "empty",
        "garbage after ogg header",
        "truncated ogg",
        "png",
        "video without audio",
        "every frame damaged",
    ],
)
def test_unreadable_audio_is_refused_with_a_clear_sentence(data: bytes, sentence_part: str) -> None:
    with pytest.raises(UnreadableMedia) as refused:
        decode_audio_to_wav(data, max_seconds=10)
    assert sentence_part in refused.value.user_message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096) | st.binary(max_size=512).map(lambda b: b"OggS" + b))
def test_arbitrary_bytes_decode_or_raise_unreadable_media_only(data: bytes) -> None:
    try:
        decoded = decode_audio_to_wav(data, max_seconds=10)
    except UnreadableMedia:
        return
    params, _ = read_wav(decoded.wav)
    assert (params.framerate, params.nchannels, params.sampwidth) == (16_000, 1, 2)


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        decode_audio_to_wav(make_wav(1.0), max_seconds=0)


async def test_async_decoding_leaves_the_event_loop_free() -> None:
    voice = make_ogg_opus(30.0)
    decoded, ticks = await run_beside_ticker(decode_audio_to_wav_async(voice, max_seconds=60))
    assert ticks > 0
    assert decoded == decode_audio_to_wav(voice, max_seconds=60)
    assert isinstance(decoded, DecodedAudio)


# --- images ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "mime_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_accepted_image_formats_pass_through_unchanged(image_format: str, mime_type: str) -> None:
    data = make_image(image_format, 120, 80)
    prepared = prepare_image(data, filename="picture.bin")
    assert prepared == PreparedImage(mime_type, 120, 80, data, prepared.filename)
    assert prepared.filename is not None and prepared.filename.startswith("picture.")


@pytest.mark.parametrize("image_format", ["BMP", "TIFF"])
def test_lossless_formats_phi4_lacks_become_png_with_the_same_pixels(image_format: str) -> None:
    prepared = prepare_image(make_image(image_format, 30, 20, (10, 200, 30)), filename="scan.x")
    assert (prepared.mime_type, prepared.width, prepared.height) == ("image/png", 30, 20)
    assert prepared.filename == "scan.png"
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert image.format == "PNG"
        assert image.convert("RGB").getpixel((5, 5)) == (10, 200, 30)


def test_conversion_turns_the_picture_upright_as_its_exif_says() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    Image.new("RGB", (40, 10), (0, 0, 255)).save(out, "TIFF", exif=exif)
    prepared = prepare_image(out.getvalue())
    assert (prepared.width, prepared.height, prepared.filename) == (10, 40, None)


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow build has no AVIF codec")
def test_photos_in_lossy_formats_phi4_lacks_become_jpeg() -> None:
    prepared = prepare_image(make_image("AVIF", 32, 24), filename="IMG_1.avif")
    assert (prepared.mime_type, prepared.width, prepared.height) == ("image/jpeg", 32, 24)
    assert prepared.filename == "IMG_1.jpg"
    assert prepared.data.startswith(b"\xff\xd8\xff")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        make_noisy_image("JPEG")[:-500],
        make_noisy_image("PNG")[:-500],
        make_noisy_image("GIF")[:-500],
        make_noisy_image("WEBP")[:-500],
        make_png()[:30],
        b"%PDF-1.7\n" + bytes(200),
    ],
    ids=["empty", "cut jpeg", "cut png", "cut gif", "cut webp", "png header only", "pdf"],
)
def test_damaged_or_foreign_images_are_unreadable(data: bytes) -> None:
    with pytest.raises(UnreadableMedia):
        prepare_image(data)


def test_more_than_100_megapixels_is_refused_from_the_header() -> None:
    with pytest.raises(UnreadableMedia) as refused:
        prepare_image(make_png_bomb(14_000, 14_000))
    assert "at most 100 megapixels" in refused.value.user_message


@pytest.mark.parametrize(("width", "height"), [(7_000, 7_000), (4_000, 4_000)])
def test_more_pixels_per_byte_than_any_picture_is_refused_as_a_bomb(
    width: int, height: int
) -> None:
    with pytest.raises(UnreadableMedia) as refused:
        prepare_image(make_png_bomb(width, height))
    assert "far more pixels than its file size allows" in refused.value.user_message


def test_a_small_flat_png_is_no_bomb_and_is_scaled_down() -> None:
    prepared = prepare_image(make_png(3_000, 2_000), filename="flat.png", max_side=600)
    assert (prepared.mime_type, prepared.width, prepared.height) == ("image/png", 600, 400)
    assert prepared.filename == "flat.png"


def test_a_60_megapixel_jpeg_is_taken_and_scaled_to_the_longest_side() -> None:
    prepared = prepare_image(make_jpeg(9_000, 6_700), filename="camera.JPG")
    assert (prepared.mime_type, prepared.width, prepared.height) == ("image/jpeg", 2048, 1525)
    assert prepared.filename == "camera.JPG"
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert (image.format, image.size) == ("JPEG", (2048, 1525))
        assert image.getpixel((1000, 700)) == pytest.approx((200, 40, 30), abs=3)


def test_a_photo_that_fits_passes_byte_for_byte() -> None:
    data = make_photo(2048, 1536)
    assert prepare_image(data).data == data


def test_a_scaled_photo_is_upright_as_its_exif_said() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    Image.new("RGB", (3_000, 1_000), (0, 0, 255)).save(out, "JPEG", exif=exif)
    prepared = prepare_image(out.getvalue(), max_side=900)
    assert (prepared.width, prepared.height) == (300, 900)
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert image.size == (300, 900)


def test_a_scaled_png_keeps_its_transparency() -> None:
    out = io.BytesIO()
    Image.new("RGBA", (1_200, 300), (10, 20, 30, 0)).save(out, "PNG")
    prepared = prepare_image(out.getvalue(), max_side=400)
    assert (prepared.mime_type, prepared.width, prepared.height) == ("image/png", 400, 100)
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert image.mode == "RGBA"
        pixel = image.getpixel((5, 5))
        assert isinstance(pixel, tuple) and pixel[3] == 0, "still transparent"


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_an_image_or_unreadable_media(data: bytes) -> None:
    try:
        prepared = prepare_image(data)
    except UnreadableMedia:
        return
    assert prepared.mime_type in {"image/jpeg", "image/png", "image/gif", "image/webp"}


async def test_async_image_preparation_leaves_the_event_loop_free() -> None:
    data = make_image("BMP", 800, 600)
    prepared, ticks = await run_beside_ticker(prepare_image_async(data, filename="a.bmp"))
    assert ticks > 0
    assert prepared == prepare_image(data, filename="a.bmp")


# --- sniffing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime_type"),
    [
        (make_jpeg(), "image/jpeg"),
        (make_png(), "image/png"),
        (make_image("GIF"), "image/gif"),
        (make_image("WEBP"), "image/webp"),
        (make_image("BMP"), "image/bmp"),
        (make_image("TIFF"), "image/tiff"),
        (make_ogg_opus(0.5), "audio/ogg"),
        (make_wav(0.1), "audio/wav"),
        (make_flac(0.1), "audio/flac"),
        (make_mp3(0.1), "audio/mpeg"),
        (b"\xff\xfb\x90\x64" + bytes(60), "audio/mpeg"),
        (b"\xff\xf1\x50\x80" + bytes(60), "audio/aac"),
        (make_m4a(0.1), "audio/mp4"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_content_is_recognised_by_its_magic_bytes_whatever_the_name(
    data: bytes, mime_type: str
) -> None:
    assert sniff_media(data) == mime_type
    assert sniff_media(data, "misleading.txt", "application/pdf") == mime_type


@pytest.mark.parametrize(
    ("filename", "declared", "expected"),
    [
        ("voice.OPUS", None, "audio/ogg"),
        ("memo.m4a", "video/mp4", "audio/mp4"),
        (None, "audio/x-wav", "audio/wav"),
        (None, "audio/mpeg; charset=binary", "audio/mpeg"),
        ("notes.pdf", "application/pdf", None),
        (None, None, None),
    ],
)
def test_without_a_signature_the_name_then_the_declared_type_decide(
    filename: str | None, declared: str | None, expected: str | None
) -> None:
    mp4_video = b"\x00\x00\x00\x18ftypisom" + bytes(20)
    assert sniff_media(mp4_video, filename, declared) == expected


@given(st.binary(max_size=64), st.none() | st.text(max_size=12), st.none() | st.text(max_size=20))
def test_sniffing_never_fails_and_answers_only_known_types(
    data: bytes, filename: str | None, declared: str | None
) -> None:
    assert sniff_media(data, filename, declared) in KNOWN_TYPES | {None}


@pytest.mark.parametrize(
    ("mime_type", "filename", "kind"),
    [
        ("audio/ogg", None, "audio"),
        ("audio/x-m4a", "memo.m4a", "audio"),
        ("image/jpeg", None, "image"),
        ("image/heic", "IMG_1.HEIC", "image"),
        ("application/octet-stream", "song.MP3", "audio"),
        (None, "scan.tiff", "image"),
        ("video/mp4", "clip.mp4", None),
        ("image/svg+xml", "logo.svg", None),
        ("application/pdf", "paper.pdf", None),
        (None, None, None),
    ],
)
def test_documents_are_classified_before_download(
    mime_type: str | None, filename: str | None, kind: str | None
) -> None:
    assert media_kind(mime_type, filename) == kind
