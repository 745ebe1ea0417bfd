"""Turns decoded audio frames, whatever their rate and layout, into 16 kHz mono 16-bit WAV."""

from __future__ import annotations

import io
import wave

import av
from av.audio.fifo import AudioFifo
from av.audio.frame import AudioFrame
from av.filter import Graph

TARGET_RATE = 16_000
"""Phi-4 reads audio at 16 kHz; sending more only costs bandwidth."""

# Frames are gathered into half-second batches before conversion: FFmpeg's per-call cost,
# and PyAV's, is then paid twice a second rather than for every 20 ms Opus frame.
_BATCH_SECONDS = 0.5


def _shape(frame: AudioFrame) -> tuple[str, str, int]:
    return (frame.format.name, frame.layout.name, frame.sample_rate)


class _Conversion:
    """A FIFO and an FFmpeg filter graph for one input shape: batches in, 16 kHz mono s16 out.

    The graph is what PyAV's AudioResampler builds (aformat, with FFmpeg's default
    libswresample inserted before it), so the samples are the same; but it runs on this
    thread alone. By default FFmpeg starts a pool of worker threads for every graph, which
    costs more than converting a short voice note, and a resampler has no slices to share
    among them anyway.
    """

    def __init__(self, frame: AudioFrame) -> None:
        self.shape = _shape(frame)
        self.batch = max(1, int(frame.sample_rate * _BATCH_SECONDS))
        self.fifo = AudioFifo()
        self.graph = Graph()  # owns the contexts below: keep it as long as they are used
        self.graph.threads = 1
        self.source = self.graph.add(
            "abuffer",
            sample_rate=str(frame.sample_rate),
            sample_fmt=frame.format.name,
            channel_layout=frame.layout.name,
        )
        convert = self.graph.add(
            "aformat", sample_fmts="s16", sample_rates=str(TARGET_RATE), channel_layouts="mono"
        )
        self.sink = self.graph.add("abuffersink")
        self.source.link_to(convert)
        convert.link_to(self.sink)
        self.graph.configure()

    def convert(self, batch: AudioFrame | None) -> list[AudioFrame]:
        """Converts a batch (None: the end of input) and returns whatever is ready."""
        self.source.push(batch)
        ready: list[AudioFrame] = []
        while True:
            try:
                out = self.sink.pull()
            except (av.BlockingIOError, av.EOFError):
                return ready
            assert isinstance(out, AudioFrame)
            ready.append(out)


class Wav16kWriter:
    """Converts decoded frames as they come and appends them to a WAV.

    Memory holds the output and one batch of input, never the decoded stream.
    """

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._wav = wave.open(self._buffer, "wb")  # closed in finish() or close()
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(TARGET_RATE)
        self._conversion: _Conversion | None = None
        self.samples = 0
        """16 kHz samples written so far."""

    def add(self, frame: AudioFrame) -> None:
        conversion = self._conversion
        if conversion is None or _shape(frame) != conversion.shape:
            # A FIFO and a graph take one input shape; a stream that changes layout or
            # rate midway (chained Ogg, some MP3s) gets fresh ones after the old are emptied.
            self._end()
            conversion = self._conversion = _Conversion(frame)
        frame.pts = None  # timestamp gaps are irrelevant here and would upset the FIFO
        conversion.fifo.write(frame)
        if conversion.fifo.samples >= conversion.batch:
            self._write(conversion.convert(conversion.fifo.read()))

    def finish(self) -> bytes:
        """The whole WAV, once every frame has been added."""
        self._end()
        self._wav.close()
        return self._buffer.getvalue()

    def close(self) -> None:
        """Close the WAV even when decoding failed, so nothing is left for the collector."""
        self._wav.close()

    def _end(self) -> None:
        conversion, self._conversion = self._conversion, None
        if conversion is None:
            return
        rest = conversion.fifo.read()
        if rest is not None:
            self._write(conversion.convert(rest))
        self._write(conversion.convert(None))

    def _write(self, blocks: list[AudioFrame]) -> None:
        for block in blocks:
            self._wav.writeframesraw(memoryview(block.planes[0])[: block.samples * 2])
            self.samples += block.samples
