"""Videos, PDFs, text files and stickers made into model input, on real generated files."""

from __future__ import annotations

import io
import wave

import pytest
from PIL import Image

from bot.media import video as video_module
from bot.media.errors import (
    EncryptedDocument,
    UndecodableText,
    UnreadableDocument,
    UnreadableVideo,
    VideoTooLong,
)
from bot.media.pdf import read_pdf
from bot.media.sniff import document_form
from bot.media.sticker import sticker_text
from bot.media.text_file import inline_text_file, is_text_file
from bot.media.video import decode_video, frame_count
from tests.media_factory import (
    make_encrypted_pdf,
    make_mkv,
    make_mp4,
    make_scanned_pdf,
    make_text_pdf,
    make_webm_sticker,
    mkv_with_false_duration,
)


def _red(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        pixel = image.convert("RGB").getpixel((4, 4))
        assert isinstance(pixel, tuple)
        return int(pixel[0])


def test_frames_are_spread_over_the_video_and_the_sound_becomes_16khz_wav() -> None:
    decoded = decode_video(make_mp4(8.0), max_seconds=120, max_frames=8, sound_seconds=300)
    assert len(decoded.frames) == frame_count(8.0, 8) == 4
    reds = [_red(f.data) for f in decoded.frames]
    assert reds == sorted(reds) and reds[-1] - reds[0] > 150, "the ramp is sampled across"
    assert decoded.frames[0].filename == "video_frame1.jpg"
    assert decoded.audio is not None
    with wave.open(io.BytesIO(decoded.audio.wav)) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (16_000, 1)
        assert abs(wav.getnframes() / 16_000 - 8.0) < 0.1


def test_a_silent_video_or_a_gif_gives_frames_only() -> None:
    decoded = decode_video(make_mp4(1.0, sound=False), max_seconds=120, max_frames=4)
    assert len(decoded.frames) == 1 and decoded.audio is None
    with_sound = decode_video(make_mp4(1.0), max_seconds=120, max_frames=4)
    assert with_sound.audio is None, "no sound asked for (a GIF, or a backend without audio)"


def test_frame_count_grows_with_length_up_to_the_maximum() -> None:
    assert [frame_count(s, 4) for s in (0.5, 3.0, 4.0, 7.5, 60.0)] == [1, 2, 2, 4, 4]


def test_a_video_stating_a_false_short_length_is_refused_by_its_packets() -> None:
    liar = mkv_with_false_duration(make_mkv(200.0), 5.0)
    with pytest.raises(VideoTooLong) as refused:
        decode_video(liar, max_seconds=120, max_frames=8)
    assert refused.value.seconds is None
    assert "120 seconds" in refused.value.user_message


def test_an_honest_long_video_is_refused_before_any_decoding() -> None:
    with pytest.raises(VideoTooLong) as refused:
        decode_video(make_mkv(130.0), max_seconds=120, max_frames=8)
    assert refused.value.seconds == pytest.approx(130.0, abs=1)


def test_long_gaps_between_key_frames_cost_a_bounded_decode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one_key_frame = make_mp4(12.0, fps=10, gop=1000, sound=False)
    monkeypatch.setattr(video_module, "DECODE_PIXEL_BUDGET", 320 * 240 * 8)
    decoded = decode_video(one_key_frame, max_seconds=120, max_frames=4)
    assert 1 <= len(decoded.frames) <= 4


def test_damaged_and_empty_videos_are_unreadable() -> None:
    good = make_mp4(2.0)
    for bad in (b"", b"\x00" * 500, good[:64] + bytes(len(good) - 64)):
        with pytest.raises(UnreadableVideo):
            decode_video(bad, max_seconds=120, max_frames=4)


def test_a_pdf_text_layer_is_read_page_by_page() -> None:
    pdf = make_text_pdf([["Alpha beta gamma delta epsilon"], ["Zeta eta theta iota kappa"]])
    read = read_pdf(pdf, filename="notes.pdf", max_chars=40_000, max_pages=8)
    assert read.page_count == 2 and read.pages == () and not read.cut
    assert read.text.startswith("Document notes.pdf (2 pages):")
    assert "--- Page 1 ---\nAlpha beta gamma delta epsilon" in read.text
    assert "--- Page 2 ---\nZeta eta theta iota kappa" in read.text


def test_pdf_text_over_the_limit_is_cut_and_says_so() -> None:
    pages = [[f"Page {n} sentence number {i} with words." for i in range(30)] for n in range(10)]
    read = read_pdf(make_text_pdf(pages), filename="long.pdf", max_chars=3000, max_pages=8)
    assert read.cut
    body, note = read.text.rsplit("\n", 1)
    assert len(body) < 3100
    assert "only the first 3000 characters" in note and "more pages not included" in note


def test_scanned_pages_become_images_up_to_the_page_limit() -> None:
    scan = make_scanned_pdf([(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    read = read_pdf(scan, filename="scan.pdf", max_chars=40_000, max_pages=2)
    assert [_red(p.data) > 200 for p in read.pages] == [True, False]
    assert read.pages[0].filename == "scan_page1.jpg"
    assert read.text.endswith(
        "[1 more scanned page not shown: only the first 2 pages without text are included "
        "as images.]"
    )


def test_thousands_of_empty_pages_cost_a_bounded_read_and_a_short_text() -> None:
    blank = make_scanned_pdf([(255, 255, 255)] * 400, width=8, height=8)
    read = read_pdf(blank, filename="blank.pdf", max_chars=40_000, max_pages=2)
    assert read.page_count == 400 and len(read.pages) == 2
    assert len(read.text) < 400
    assert "[298 more scanned pages not shown" in read.text
    assert read.text.endswith("[Only the first 300 of 400 pages were read.]")


def test_encrypted_and_broken_pdfs_are_refused_with_a_sentence() -> None:
    with pytest.raises(EncryptedDocument):
        read_pdf(make_encrypted_pdf(), filename="x.pdf", max_chars=100, max_pages=1)
    with pytest.raises(UnreadableDocument):
        read_pdf(b"%PDF-1.4\ngarbage", filename="x.pdf", max_chars=100, max_pages=1)


def test_text_files_in_any_charset_are_inlined_in_a_fence() -> None:
    russian = "Привет! Это заметка в кодировке Windows-1251, написанная по-русски. " * 3
    inlined = inline_text_file(russian.encode("cp1251"), filename="заметка.txt", max_chars=10_000)
    assert inlined.text.startswith("File заметка.txt:\n```txt\nПривет!")
    code = "x = '```'\n"
    fenced = inline_text_file(code.encode(), filename="a.py", max_chars=100).text
    assert fenced == "File a.py:\n````py\nx = '```'\n````"


def test_a_text_file_over_the_limit_is_cut_and_binary_data_is_refused() -> None:
    inlined = inline_text_file(b"a" * 500, filename="big.log", max_chars=100)
    assert inlined.cut and "only the first 100 characters" in inlined.text
    with pytest.raises(UndecodableText):
        inline_text_file(b"\x00\x01\x02binary", filename="data.txt", max_chars=100)


@pytest.mark.parametrize(
    ("mime", "name", "form"),
    [
        ("video/mp4", "clip.mp4", "video"),
        ("application/octet-stream", "clip.webm", "video"),
        ("application/pdf", "a.pdf", "pdf"),
        ("text/plain", "a.txt", "text"),
        ("application/json", "data.json", "text"),
        ("application/octet-stream", "main.rs", "text"),
        ("text/x-python", "x.py", "text"),
        ("image/png", "a.png", "image"),
        ("audio/mpeg", "a.mp3", "audio"),
        ("application/zip", "a.zip", None),
        (None, "no_suffix", None),
    ],
)
def test_documents_are_told_apart_by_type_then_name(
    mime: str | None, name: str, form: str | None
) -> None:
    assert document_form(mime, name) == form


def test_what_counts_as_a_text_file() -> None:
    assert is_text_file(None, "Dockerfile") and is_text_file("text/csv", None)
    assert not is_text_file("application/octet-stream", "photo.heic")


def test_a_video_sticker_gives_one_frame() -> None:
    decoded = decode_video(make_webm_sticker(), max_seconds=120, max_frames=1, stem="sticker")
    (frame,) = decoded.frames
    assert (frame.width, frame.height, frame.filename) == (128, 128, "sticker_frame1.jpg")


def test_a_sticker_is_named_with_its_emoji() -> None:
    assert sticker_text("😀") == "[Sticker 😀]"
    assert sticker_text(None) == "[Sticker]"
