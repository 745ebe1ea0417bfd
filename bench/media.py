"""Measures how fast and how lean media becomes model input: `python -m bench.media`.

Voice notes → 16 kHz WAV; a 60 s 720p video → frames and WAV; a 50-page text PDF; a 20-page
scanned PDF; an album of ten 36-megapixel photos. Voice notes of 60 s and more must cost under
50 ms of CPU per minute of audio, the video and PDF rows must each stay under 2 s and 300 MB
of peak RSS, the album under 400 MB: the bench exits non-zero on a miss.

Voice notes are judged on CPU time (`time.process_time`: every thread of this process, the
kernel's work for it included), because the target is what converting a minute of audio
costs the bot; the wall clock on a shared machine adds whatever else ran meanwhile (at a
load of 10 on 2 cores it doubled the figures from one run to the next). The wall clock is
shown beside it. A 5 s note is shown, not judged: its per-minute figure carries the fixed
cost of opening any file (container probe, decoder and converter set-up), which per minute
of audio weighs twelve times what it does for a minute-long note.
"""

from __future__ import annotations

import asyncio
import base64
import io
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from bench.harness import BOT_USERNAME, bot_env, proc_figures, start_bot, stop_bot, wait_for
from bench.harness import verdict as report
from bot.media import MediaTooLong, decode_audio_to_wav
from bot.media.pdf import read_pdf
from bot.media.video import decode_video
from tests.e2e.bot_process import TOKEN
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import (
    make_mp4,
    make_ogg_opus,
    make_photo,
    make_scanned_pdf,
    make_text_pdf,
    ogg_with_false_duration,
)

TARGET_MS_PER_MINUTE = 50.0
THROUGHPUT_FROM_SECONDS = 60.0  # shorter notes carry the fixed set-up cost: shown, not judged
CASES = ((5.0, 41), (60.0, 7), (300.0, 5))  # (seconds of audio, timed runs)
MIB = 1024 * 1024


def p50_ms(work: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median CPU and wall-clock milliseconds of `runs` runs of `work`."""
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        work()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return statistics.median(cpu) * 1000, statistics.median(wall) * 1000


def tracemalloc_peak(work: Callable[[], object]) -> int:
    """Peak bytes allocated through Python while `work` runs (FFmpeg's own buffers excluded)."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _maxrss_bytes() -> int:
    """Peak RSS of this process. On Linux, VmHWM: ru_maxrss there also keeps the parent's
    RSS at fork across exec, which would hide a small child's peak behind this bench's."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def maxrss_growth(data: bytes, max_seconds: float) -> int:
    """Growth of peak RSS while a fresh process decodes `data` (memory FFmpeg allocates
    included); a fresh process, because a warm one reuses pages freed by earlier runs."""
    child = subprocess.run(
        [sys.executable, "-m", "bench.media", "--rss-child", str(max_seconds)],
        input=data,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return int(child.stdout)


def rss_child(max_seconds: float) -> int:
    data = sys.stdin.buffer.read()
    before = _maxrss_bytes()
    decode_audio_to_wav(data, max_seconds=max_seconds)
    print(_maxrss_bytes() - before)
    return 0


def refusal_ms(data: bytes, max_seconds: float) -> tuple[float, float]:
    """Time to refuse, and how many seconds of audio were decoded before refusing."""
    start = time.perf_counter()
    try:
        decode_audio_to_wav(data, max_seconds=max_seconds)
    except MediaTooLong as refused:
        return (time.perf_counter() - start) * 1000, refused.decoded_seconds
    raise AssertionError("the recording was not refused")


DOCUMENT_TARGET_SECONDS = 2.0
DOCUMENT_TARGET_RSS_MIB = 300.0


def _video_case(data: bytes) -> str:
    video = decode_video(data, max_seconds=120, max_frames=8, sound_seconds=300)
    sound = video.audio.duration if video.audio else 0.0
    return f"{len(video.frames)} frames, {sound:.0f} s WAV"


def _pdf_case(data: bytes) -> str:
    read = read_pdf(data, filename="bench.pdf", max_chars=40_000, max_pages=8)
    return f"{len(read.text)} chars, {len(read.pages)} page images"


KIND_CASES: dict[str, Callable[[bytes], str]] = {"video": _video_case, "pdf": _pdf_case}


def kind_child(kind: str) -> int:
    """In a fresh process: prepare stdin's file once, print seconds, peak RSS and what came out."""
    data = sys.stdin.buffer.read()
    start = time.perf_counter()
    what = KIND_CASES[kind](data)
    elapsed = time.perf_counter() - start
    print(f"{elapsed}\t{_maxrss_bytes()}\t{what}")
    return 0


def kind_rows() -> bool:
    """The video and PDF rows; False when one misses its target."""
    print("Videos and PDFs, each prepared once in a fresh process (time includes codec start-up)")
    header = f"{'case':<34} {'seconds':>7} {'peak RSS MiB':>12} {'target':>16}  result"
    print(header)
    print("-" * len(header))
    # 14 lines a page: all 50 pages fit the default 40,000 characters, so all are read.
    text_pages = [
        [f"Line {i} of page {p}: quarterly figures and notes." for i in range(14)]
        for p in range(50)
    ]
    cases = [
        ("60 s 720p H.264/AAC video", "video", make_mp4(60.0, width=1280, height=720, fps=30)),
        ("50-page text PDF", "pdf", make_text_pdf(text_pages)),
        (
            "20-page scanned PDF (A4, 150 dpi)",
            "pdf",
            make_scanned_pdf([(40 + 10 * n, 120, 200) for n in range(20)], 1240, 1754, 150.0),
        ),
    ]
    ok = True
    for name, kind, data in cases:
        child = subprocess.run(
            [sys.executable, "-m", "bench.media", "--kind-child", kind],
            input=data,
            capture_output=True,
            check=True,
            timeout=120,
        )
        seconds, rss, what = child.stdout.decode().strip().split("\t")
        rss_mib = int(rss) / MIB
        hit = float(seconds) < DOCUMENT_TARGET_SECONDS and rss_mib < DOCUMENT_TARGET_RSS_MIB
        ok = ok and hit
        target = f"<{DOCUMENT_TARGET_SECONDS:.0f} s, <{DOCUMENT_TARGET_RSS_MIB:.0f} MiB"
        print(
            f"{name:<34} {float(seconds):>7.2f} {rss_mib:>12.0f} {target:>16}  "
            f"{'ok' if hit else 'MISS'}: {what}"
        )
    return ok


ALBUM_PHOTOS = 10
ALBUM_SIZE = (7360, 4912)  # 36 megapixels each, a full-frame camera's photos
ALBUM_TARGET_RSS_MIB = 400.0
ALBUM_ANSWER = "Ten landscapes."


async def album_through_the_bot(photos: list[bytes], workdir: Path) -> tuple[float, int, str]:
    """The real bot answers one album of `photos` (fake Telegram, fake model): seconds from
    sending to the answer (or to its failure), the bot's peak RSS (KiB) and what the model
    received (or why it was not answered)."""
    async with (
        FakeTelegram(token=TOKEN, bot_username=BOT_USERNAME) as tg,
        FakeOpenAIServer() as model,
    ):
        model.answer = ALBUM_ANSWER
        bot = await start_bot(tg, bot_env(tg, model, workdir), workdir)
        try:
            user = tg.private_user(42, "Alice")
            start = time.monotonic()
            for n, photo in enumerate(photos):
                caption = "What are these?" if n == 0 else None
                tg.send_photo(user.chat, user, photo, caption=caption, media_group_id="album")
            ended = await wait_for(
                tg,
                lambda: tg.text_of(42) == ALBUM_ANSWER or bot.log_lines("answer failed"),
                timeout=300,
            )
            elapsed = time.monotonic() - start
            assert bot.proc is not None
            figures = proc_figures(bot.proc.pid)
        finally:
            await stop_bot(bot)
    if not ended or figures is None:
        raise RuntimeError(f"the album was not answered:\n{bot.log()[-3000:]}")
    if tg.text_of(42) != ALBUM_ANSWER:
        return elapsed, figures.hwm_kib, f"not answered: {bot.log_lines('answer failed')[0]}"
    images = [
        p["image_url"]["url"]
        for m in model.chat_requests[-1].json["messages"]
        if isinstance(m["content"], list)
        for p in m["content"]
        if p["type"] == "image_url"
    ]
    sizes = {Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size for url in images}
    shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
    return elapsed, figures.hwm_kib, f"{len(images)} images of {shown} px to the model"


def album_row() -> bool:
    """Ten 36 MP photos in one album through the real bot; False when peak RSS misses."""
    print(f"An album of {ALBUM_PHOTOS} photos of 36 megapixels, answered by the bot process")
    photos = [make_photo(*ALBUM_SIZE, seed=n) for n in range(ALBUM_PHOTOS)]
    with tempfile.TemporaryDirectory() as folder:
        seconds, hwm_kib, what = asyncio.run(album_through_the_bot(photos, Path(folder)))
    rss_mib = hwm_kib / 1024
    hit = rss_mib < ALBUM_TARGET_RSS_MIB and not what.startswith("not answered")
    mb = sum(len(p) for p in photos) / 1e6
    print(
        f"  {mb:.0f} MB of JPEG: over in {seconds:.1f} s, bot's peak RSS {rss_mib:.0f} MiB "
        f"(target <{ALBUM_TARGET_RSS_MIB:.0f} MiB) {'ok' if hit else 'MISS'}: {what}"
    )
    return hit


def main() -> int:
    print("OGG/Opus voice notes (mono, 48 kHz, 32 kbit/s) -> 16 kHz mono s16 WAV")
    header = (
        f"{'audio':>7} {'runs':>4} {'CPU ms':>7} {'CPU ms/min':>10} {'target':>12} "
        f"{'wall ms':>8} {'py peak MiB':>11} {'rss Δ MiB':>9} {'WAV MiB':>7}"
    )
    print(header)
    print("-" * len(header))
    voices: dict[float, bytes] = {}
    p50s: dict[float, float] = {}
    missed: list[str] = []
    for seconds, runs in CASES:
        voice = voices[seconds] = make_ogg_opus(seconds)

        def decode(voice: bytes = voice, seconds: float = seconds) -> object:
            return decode_audio_to_wav(voice, max_seconds=seconds + 1)

        decode()  # warm-up: first use loads codecs
        ms, wall_ms = p50_ms(decode, runs)
        p50s[seconds] = ms
        per_minute = ms / (seconds / 60)
        verdict = "ok" if per_minute < TARGET_MS_PER_MINUTE else "OVER"
        if verdict == "OVER" and seconds >= THROUGHPUT_FROM_SECONDS:
            missed.append(f"{seconds:.0f} s voice note: {per_minute:.1f} ms/min")
        wav_mib = len(decode_audio_to_wav(voice, max_seconds=seconds + 1).wav) / MIB
        print(
            f"{seconds:>6.0f}s {runs:>4} {ms:>7.1f} {per_minute:>10.1f} "
            f"{f'<{TARGET_MS_PER_MINUTE:.0f} {verdict}':>12} {wall_ms:>8.1f} "
            f"{tracemalloc_peak(decode) / MIB:>11.1f} "
            f"{maxrss_growth(voice, seconds + 1) / MIB:>9.1f} "
            f"{wav_mib:>7.1f}"
        )

    longest = max(p50s)
    fixed = p50s[min(p50s)] - min(p50s) * p50s[longest] / longest
    print(
        f"Per-note fixed CPU (probe, decoder and converter set-up) ≈ {max(fixed, 0.0):.1f} ms:\n"
        "it is what lifts the ms/min of short notes; the long rows show the throughput."
    )
    print()
    print("Refusing a 300 s voice note with a 60 s limit (target: far below a full decode)")
    honest_ms, honest_decoded = refusal_ms(voices[300.0], 60)
    lying = ogg_with_false_duration(voices[300.0], 2.0)
    lying_ms, lying_decoded = refusal_ms(lying, 60)
    print(
        f"  length stated by the container : {honest_ms:7.2f} ms, {honest_decoded:5.1f} s decoded"
    )
    print(f"  container claims 2 s (a lie)   : {lying_ms:7.2f} ms, {lying_decoded:5.1f} s decoded")
    print()
    if not kind_rows():
        missed.append("videos and PDFs (see above)")
    print()
    if not album_row():
        missed.append("an album of 36 MP photos (see above)")
    return report(missed)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--rss-child"]:
        sys.exit(rss_child(float(sys.argv[2])))
    if sys.argv[1:2] == ["--kind-child"]:
        sys.exit(kind_child(sys.argv[2]))
    sys.exit(main())
