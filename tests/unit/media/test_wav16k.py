"""The converter from decoded frames to 16 kHz mono WAV: FFmpeg's samples, on one thread."""

from __future__ import annotations

import io
import os
import sys
import wave
from collections.abc import Callable

import av
import pytest
from av.audio.fifo import AudioFifo
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler

from bot.media.wav16k import Wav16kWriter
from tests.media_factory import make_flac, make_m4a, make_mp3, make_ogg_opus, make_wav

SOURCES: dict[str, Callable[[], bytes]] = {
    "ogg/opus voice note": lambda: make_ogg_opus(3.0),
    "mp3 44.1 kHz": lambda: make_mp3(3.0),
    "m4a/aac": lambda: make_m4a(3.0),
    "flac": lambda: make_flac(3.0),
    "wav 22.05 kHz stereo": lambda: make_wav(3.0, sample_rate=22_050, channels=2),
}


def decoded_frames(data: bytes) -> list[AudioFrame]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return [f for p in container.demux(stream) for f in stream.codec_context.decode(p)]


def pyav_resampler_pcm(frames: list[AudioFrame]) -> bytes:
    """The reference: PyAV's own AudioResampler to s16 mono 16 kHz, fed everything at once."""
    fifo = AudioFifo()
    for frame in frames:
        frame.pts = None
        fifo.write(frame)
    resampler = AudioResampler(format="s16", layout="mono", rate=16_000)
    out = [*resampler.resample(fifo.read()), *resampler.resample(None)]
    return b"".join(bytes(f.planes[0])[: f.samples * 2] for f in out)


@pytest.mark.parametrize("kind", SOURCES)
def test_samples_are_those_of_ffmpegs_default_resampler(kind: str) -> None:
    data = SOURCES[kind]()
    writer = Wav16kWriter()
    for frame in decoded_frames(data):
        writer.add(frame)
    with wave.open(io.BytesIO(writer.finish())) as wav:
        params = wav.getparams()
        pcm = wav.readframes(wav.getnframes())
    assert (params.framerate, params.nchannels, params.sampwidth) == (16_000, 1, 2)
    assert pcm == pyav_resampler_pcm(decoded_frames(data))
    assert writer.samples == len(pcm) // 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_converting_starts_no_worker_threads() -> None:
    """FFmpeg's default for a filter graph is a pool of worker threads per graph, created
    with it: more work than converting a short voice note, and idle for a resampler."""
    frames = decoded_frames(make_ogg_opus(1.0))
    before = len(os.listdir("/proc/self/task"))
    writer = Wav16kWriter()
    writer.add(frames[0])  # the graph exists from the first frame on
    during = len(os.listdir("/proc/self/task"))
    writer.finish()
    assert during == before
