"""Measures how fast and how lean voice notes become 16 kHz WAV: `python -m bench.media`."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable

from bench.harness import verdict as report
from bot.media import MediaTooLong, decode_audio_to_wav
from tests.media_factory import make_ogg_opus, ogg_with_false_duration

TARGET_MS_PER_MINUTE = 50.0
THROUGHPUT_FROM_SECONDS = 60.0  # shorter notes are mostly fixed set-up cost: shown, not judged
CASES = ((5.0, 41), (60.0, 7), (300.0, 5))  # (seconds of audio, timed runs)
MIB = 1024 * 1024


def p50_ms(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


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


def main() -> int:
    print("OGG/Opus voice notes (mono, 48 kHz, 32 kbit/s) -> 16 kHz mono s16 WAV")
    header = (
        f"{'audio':>7} {'runs':>4} {'p50 ms':>8} {'ms/min':>7} {'target':>12} "
        f"{'py peak MiB':>11} {'rss Δ MiB':>9} {'WAV MiB':>7}"
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
        ms = p50s[seconds] = p50_ms(decode, runs)
        per_minute = ms / (seconds / 60)
        verdict = "ok" if per_minute < TARGET_MS_PER_MINUTE else "OVER"
        if verdict == "OVER" and seconds >= THROUGHPUT_FROM_SECONDS:
            missed.append(f"{seconds:.0f} s voice note: {per_minute:.1f} ms/min")
        wav_mib = len(decode_audio_to_wav(voice, max_seconds=seconds + 1).wav) / MIB
        print(
            f"{seconds:>6.0f}s {runs:>4} {ms:>8.1f} {per_minute:>7.1f} "
            f"{f'<{TARGET_MS_PER_MINUTE:.0f} {verdict}':>12} "
            f"{tracemalloc_peak(decode) / MIB:>11.1f} "
            f"{maxrss_growth(voice, seconds + 1) / MIB:>9.1f} "
            f"{wav_mib:>7.1f}"
        )

    longest = max(p50s)
    fixed = p50s[min(p50s)] - min(p50s) * p50s[longest] / longest
    print(
        f"Per-note fixed cost (probe, decoder and resampler set-up) ≈ {max(fixed, 0.0):.1f} ms:\n"
        "it dominates the ms/min of short notes; the long rows show the throughput."
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
    return report(missed)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--rss-child"]:
        sys.exit(rss_child(float(sys.argv[2])))
    sys.exit(main())
