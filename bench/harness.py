"""What the streaming and soak benchmarks share: the bot process, its /proc figures, tables."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from tests.e2e.bot_process import TOKEN, BotProcess
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

BOT_USERNAME = "phi4_bench_bot"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_stream_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("stream", default=None)


def last_user_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The content parts of the newest user message an OpenAI request carried."""
    content = next(m for m in reversed(body["messages"]) if m["role"] == "user")["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the newest user message (its text parts joined)."""
    parts = last_user_parts(body)
    return " ".join(p.get("text", "") for p in parts if p.get("type") == "text")


class StampedOpenAIServer(FakeOpenAIServer):
    """The fake OpenAI server, noting when each content chunk left it and for which stream.

    `stream_key(body)` names a request's stream (a chat, a turn); `sent[key]` then lists
    `(time.monotonic(), piece)` per content chunk, taken just before the chunk is written
    (the fake Telegram stamps message versions with the same clock).
    """

    def __init__(self, stream_key: Callable[[dict[str, Any]], str | None]) -> None:
        super().__init__()
        self.stream_key = stream_key
        self.sent: dict[str, list[tuple[float, str]]] = {}
        self.requested: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.sizes: Sequence[int] | None = None
        self.stamp_chunks = True  # off: only requests and ends are stamped (cheaper per chunk)

    def pieces(self, answer: str | None = None) -> list[str]:
        """The fake's fixed-size pieces, or pieces of `sizes` (cycled) when they are set."""
        if self.sizes is None:
            return super().pieces(answer)
        return split_sizes(self.answer if answer is None else answer, self.sizes)

    async def _stream(
        self, request: web.Request, recorded: Any, body: dict, kind: str, after: int
    ) -> web.StreamResponse:
        key = self.stream_key(body)
        if key is not None:
            self.requested.setdefault(key, time.monotonic())
        token = _stream_key.set(key)
        try:
            return await super()._stream(request, recorded, body, kind, after)
        finally:
            _stream_key.reset(token)
            if key is not None:
                self.finished[key] = time.monotonic()

    async def _send(self, response: web.StreamResponse, payload: dict[str, Any]) -> None:
        key = _stream_key.get()
        choices = payload.get("choices") or [{}]
        piece = (choices[0].get("delta") or {}).get("content")
        if key is not None and piece and self.stamp_chunks:
            self.sent.setdefault(key, []).append((time.monotonic(), piece))
        await super()._send(response, payload)


def vllm_sizes(count: int = 512, seed: int = 12) -> tuple[int, ...]:
    """Piece sizes of 2–8 characters, the shape vLLM streams tokens in (fixed by `seed`)."""
    rng = random.Random(seed)
    return tuple(rng.randint(2, 8) for _ in range(count))


def split_sizes(text: str, sizes: Sequence[int]) -> list[str]:
    """`text` cut into consecutive pieces of `sizes[0]`, `sizes[1]`, ... (cycled)."""
    pieces, start, i = [], 0, 0
    while start < len(text):
        size = sizes[i % len(sizes)]
        pieces.append(text[start : start + size])
        start, i = start + size, i + 1
    return pieces


_LAG_LINE = re.compile(
    r"event loop lag: p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms over (\d+) ticks"
)


def bot_loop_lag(log: str) -> tuple[float, float, float] | None:
    """(p50, p99, max) in seconds from the bot's own lag summary, logged when it stops."""
    found = _LAG_LINE.findall(log)
    if not found:
        return None
    p50, p99, worst, _ = found[-1]
    return float(p50) / 1000, float(p99) / 1000, float(worst) / 1000


class CpuSampler:
    """Samples a process's CPU seconds and a counter every `period` seconds.

    `per_unit()` gives the CPU spent per unit of the counter in each period (say µs per
    chunk); `busy_share()` the share of one core used in each period.
    """

    def __init__(self, pid: int, counter: Callable[[], int], period: float = 0.5) -> None:
        self.pid, self.counter, self.period = pid, counter, period
        self.samples: list[tuple[float, float, int]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> CpuSampler:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._take()

    def _take(self) -> None:
        figures = proc_figures(self.pid)
        if figures is not None:
            self.samples.append((time.monotonic(), figures.cpu_seconds, self.counter()))

    async def _watch(self) -> None:
        while True:
            self._take()
            await asyncio.sleep(self.period)

    def per_unit(self, min_units: int = 1, until: float = math.inf) -> list[float]:
        out = []
        for (_, cpu0, n0), (t1, cpu1, n1) in zip(self.samples, self.samples[1:], strict=False):
            if n1 - n0 >= min_units and t1 <= until:
                out.append((cpu1 - cpu0) / (n1 - n0))
        return out

    def busy_share(self) -> list[float]:
        return [
            (cpu1 - cpu0) / (t1 - t0)
            for (t0, cpu0, _), (t1, cpu1, _) in zip(self.samples, self.samples[1:], strict=False)
            if t1 > t0
        ]


class ModelServer(Protocol):
    """What `bot_env` needs of a model server: where it listens."""

    base_url: str


def bot_env(
    tg: FakeTelegram, model: ModelServer, workdir: Path, **overrides: str
) -> dict[str, str]:
    """The environment of a bot talking to the two fakes, with its database in `workdir`."""
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": tg.url,
        "PHI4_BACKEND": "openai",
        "OPENAI_BASE_URL": model.base_url,
        "DATABASE_URL": f"sqlite:///{workdir / 'bot.db'}",
        "LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return env


async def start_bot(tg: FakeTelegram, env: dict[str, str], workdir: Path) -> BotProcess:
    """Start `phi4bot run` and return once it long-polls (RuntimeError if it exits first)."""
    polls = tg.stats.requests["getUpdates"]
    bot = await BotProcess(env, workdir / "bot.log").start()
    up = await wait_for(
        tg, lambda: tg.stats.requests["getUpdates"] > polls or not bot.running, timeout=60
    )
    if not up or not bot.running:
        tail = "\n".join(bot.log().splitlines()[-30:])
        with contextlib.suppress(Exception):
            await bot.kill()
        raise RuntimeError(f"the bot did not start polling:\n{tail}")
    return bot


async def stop_bot(bot: BotProcess, timeout: float = 25.0) -> int | None:
    """SIGTERM and wait; None if the bot had to be killed because it did not exit in time."""
    try:
        return await bot.stop(timeout)
    except AssertionError:
        return None


async def wait_for(
    tg: FakeTelegram,
    predicate: Callable[[], object],
    timeout: float,
    *,
    recheck: float = 0.5,
) -> bool:
    """True as soon as `predicate()` holds (checked on every change of the fake Telegram
    and every `recheck` seconds, for predicates that also read other state); False on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        changed = tg.world.changed
        if predicate():
            return True
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), min(remaining, recheck))


@dataclass
class ProcFigures:
    """CPU seconds (user + system) and memory of a live process, read from /proc."""

    cpu_seconds: float
    rss_kib: int
    hwm_kib: int


def proc_figures(pid: int) -> ProcFigures | None:
    """The process's figures now; None once it is gone (or off Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "; fields[0] is state
    cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    memory = {}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            memory[name] = int(value.split()[0])
    return ProcFigures(cpu, memory.get("VmRSS", 0), memory.get("VmHWM", 0))


@dataclass
class LoopLag:
    """How late this process's event loop wakes up: if the fakes lag, their stamps do too."""

    period: float = 0.05
    worst: float = 0.0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    async def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.worst

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.period)  # a fixed tick is the measurement itself
            self.worst = max(self.worst, loop.time() - before - self.period)


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0–100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def peak_window_count(times: Sequence[float], window: float) -> int:
    """The most events inside any half-open window of `window` seconds."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass
class Row:
    metric: str
    figure: str
    target: str = ""
    ok: bool | None = None  # None: no target, nothing to judge


@dataclass
class Table:
    """Figures with their targets beside them; printed, never asserted."""

    title: str
    rows: list[Row] = field(default_factory=list)

    def add(self, metric: str, figure: str, target: str = "", ok: bool | None = None) -> None:
        self.rows.append(Row(metric, figure, target, ok))

    def misses(self) -> list[Row]:
        return [row for row in self.rows if row.ok is False]

    def lines(self) -> Iterator[str]:
        widths = [
            max([len(heading)] + [len(getattr(row, name)) for row in self.rows])
            for heading, name in (("metric", "metric"), ("figure", "figure"), ("target", "target"))
        ]
        header = (
            f"{'metric':<{widths[0]}}  {'figure':>{widths[1]}}  {'target':<{widths[2]}}  verdict"
        )
        yield self.title
        yield header
        yield "-" * len(header)
        for row in self.rows:
            verdict = "" if row.ok is None else ("ok" if row.ok else "MISSED")
            yield (
                f"{row.metric:<{widths[0]}}  {row.figure:>{widths[1]}}  "
                f"{row.target:<{widths[2]}}  {verdict}"
            ).rstrip()

    def print(self) -> None:
        print("\n".join(self.lines()), flush=True)


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.0f} ms"


def secs(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds:.2f} s"


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def verdict(missed: Sequence[str], not_run: Sequence[str] = ()) -> int:
    """Print what missed its target and what could not run; the exit status says the same.

    A benchmark whose configuration did not start measured nothing: that is a failure too,
    never a quiet "targets missed: none".
    """
    print("targets missed: " + ("; ".join(missed) if missed else "none"), flush=True)
    if not_run:
        print("not run: " + "; ".join(not_run), flush=True)
    return 1 if missed or not_run else 0
