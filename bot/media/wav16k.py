"""Turns decoded audio frames, whatever their rate and layout, into 16 kHz mono 16-bit WAV."""

from __future__ import annotations

import errno
import io
import wave

import av
from av.audio.frame import AudioFrame
from av.filter import Graph

TARGET_RATE = 16_000
"""Phi-4 reads audio at 16 kHz; sending more only costs bandwidth."""

# Frames go into the graph as decoded, and are regrouped there into half-second batches
# before conversion: FFmpeg's per-call cost, and PyAV's, is then paid twice a second rather
# than for every 20 ms Opus frame, and no Python touches the samples in between.
_BATCH_SECONDS = 0.5


def _shape(frame: AudioFrame) -> tuple[str, str, int]:
    return (frame.format.name, frame.layout.name, frame.sample_rate)


class _Conversion:
    """An FFmpeg filter graph for one input shape: frames in, 16 kHz mono s16 out.

    asetnsamples gathers the frames into batches (the last one not padded); aformat makes
    FFmpeg insert its default resampler (libswresample), as PyAV's AudioResampler does, so
    the samples are the same. The graph runs on this thread alone: by default FFmpeg starts
    a pool of worker threads for every graph, which costs more than converting a short
    voice note, and a resampler has no slices to share among them anyway.
    """

    def __init__(self, frame: AudioFrame) -> None:
        self.shape = _shape(frame)
        self.batch = max(1, int(frame.sample_rate * _BATCH_SECONDS))
        self.graph = Graph()  # owns the contexts below: keep it as long as they are used
        self.graph.threads = 1
        self.source = self.graph.add(
            "abuffer",
            sample_rate=str(frame.sample_rate),
            sample_fmt=frame.format.name,
            channel_layout=frame.layout.name,
        )
        gather = self.graph.add("asetnsamples", nb_out_samples=str(self.batch), pad="0")
        convert = self.graph.add(
            "aformat", sample_fmts="s16", sample_rates=str(TARGET_RATE), channel_layouts="mono"
        )
        self.sink = self.graph.add("abuffersink")
        self.source.link_to(gather)
        gather.link_to(convert)
        convert.link_to(self.sink)
        self.graph.configure()

    def ready(self) -> list[AudioFrame]:
        """The converted batches ready now (after the end of input: all that is left)."""
        out: list[AudioFrame] = []
        while True:
            try:
                converted = self.sink.pull()
            except (av.BlockingIOError, av.EOFError):
                return out
            assert isinstance(converted, AudioFrame)
            out.append(converted)


class Wav16kWriter:
    """Converts decoded frames as they come and appends them to a WAV.

    Memory holds the output and about one batch of input, never the decoded stream.
    """

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._wav = wave.open(self._buffer, "wb")  # closed in finish() or close()
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(TARGET_RATE)
        self._conversion: _Conversion | None = None
        self._pending = 0
        self.samples = 0
        """16 kHz samples written so far."""

    def add(self, frame: AudioFrame) -> None:
        conversion = self._conversion or self._start(frame)
        try:
            conversion.source.push(frame)
        except av.FFmpegError as refused:
            # FFmpeg's buffer source refuses a frame of another rate, layout or sample
            # format than its graph was built for: a stream that changes midway (chained
            # Ogg, some MP3s) gets a fresh graph once the old one is emptied. Looked at
            # only then, as such changes are rare and frames are many.
            if refused.errno != errno.EINVAL or _shape(frame) == conversion.shape:
                raise
            self._end()
            conversion = self._start(frame)
            conversion.source.push(frame)
        self._pending += frame.samples
        if self._pending >= conversion.batch:
            self._pending = 0
            self._write(conversion.ready())

    def finish(self) -> bytes:
        """The whole WAV, once every frame has been added."""
        self._end()
        self._wav.close()
        return self._buffer.getvalue()

    def close(self) -> None:
        """Close the WAV even when decoding failed, so nothing is left for the collector."""
        self._wav.close()

    def _start(self, frame: AudioFrame) -> _Conversion:
        self._conversion = _Conversion(frame)
        self._pending = 0
        return self._conversion

    def _end(self) -> None:
        conversion, self._conversion = self._conversion, None
        if conversion is not None:
            conversion.source.push(None)
            self._write(conversion.ready())

    def _write(self, batches: list[AudioFrame]) -> None:
        for batch in batches:
            self._wav.writeframesraw(memoryview(batch.planes[0])[: batch.samples * 2])
            self.samples += batch.samples
