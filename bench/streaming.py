"""Streams answers into N concurrent private chats and measures what users see.

Run from the repo root: `.venv/bin/python -m bench.streaming [--n 1,20,200] [--quick]
[--shape fixed|vllm] [--loop uvloop|asyncio] [--metrics on|off]`. With `--metrics on` the bot
serves its metrics port and the bench scrapes `/metrics` once a second (Prometheus scrapes
every 15 s by default), so the two settings show what metrics cost: bot CPU and first-visible
times within 5 % of each other.

The real `phi4bot run` process talks to the fake Telegram (Telegram's flood limits as sliding
windows: 3 in any 1 s and 10 in any 10 s per private chat, 20 in any 60 s per group, 30 in
any 1 s per bot; chat actions count) and to a fake
OpenAI-compatible server that streams each chat its own Markdown answer at ~30 chunks/s of
4 characters (`--shape fixed`), or at 50 chunks/s of 2–8 characters, the shape vLLM streams
tokens in (`--shape vllm`; its targets add: every backend request within 1 s of its message,
every chat's first text within 1.1 × N/30 s of the flood, bot CPU under 30 % of one core).
Everything stays on 127.0.0.1; each size gets fresh fakes, a fresh database and a fresh bot.

What "visible" means: the answer's final text F is `render_markdown(answer).text`, which is
what the bot must end with. For the prefix of the answer up to chunk k the bench computes
`L_k`, how many characters of F that prefix already determines (the common prefix of
`render_markdown(prefix_k).text` and F). Chunk k is visible at the first message version
(the fake's `history`) whose common prefix with F is at least `L_k`. Only chunks that move
`L_k` forward are timed (a chunk of bare markup or spaces shows nothing new).
Staleness of a chat is its longest such delay: the longest its visible text lagged behind
what the backend had sent. All times are `time.monotonic()` in this process, where both
fakes run.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import (
    BOT_USERNAME,
    CpuSampler,
    LoopLag,
    StampedOpenAIServer,
    Table,
    bot_env,
    bot_loop_lag,
    last_user_text,
    mib,
    ms,
    peak_window_count,
    percentile,
    proc_figures,
    secs,
    split_sizes,
    start_bot,
    stop_bot,
    verdict,
    vllm_sizes,
    wait_for,
)
from bot.telegram.streaming.render import render_markdown
from tests.e2e.bot_process import TOKEN
from tests.fakes.telegram import BotMessage, FakeTelegram

INTERVAL = 1.0  # PHI4BOT_EDIT_INTERVAL, the default


@dataclass(frozen=True)
class Shape:
    """How the fake model streams: piece sizes (cycled) and seconds between pieces."""

    name: str
    sizes: tuple[int, ...]
    delay: float

    def describe(self) -> str:
        low, high = min(self.sizes), max(self.sizes)
        size = f"{low}" if low == high else f"{low}-{high}"
        return f"{1 / self.delay:.0f} chunks/s of {size}"


SHAPES = {
    # ~30 chunks/s of 4 characters, ~120 characters/s
    "fixed": Shape("fixed", (4,), 1 / 30),
    # vLLM's token stream: 50 chunks/s of 2–8 characters
    "vllm": Shape("vllm", vllm_sizes(), 1 / 50),
}
DISPATCH_P95 = 1.0  # vllm shape: a backend request leaves within this of its message (p95)
FIRST_OF_FLOOD = 1.1  # vllm shape: every first text within 1.1 x N/30 s of the flood's start
CPU_SHARE = 0.30  # vllm shape: the bot's CPU, share of one core
BOT_RATE = 30.0  # Telegram's bot-wide budget, requests per second
SETTLE = 1.5  # seconds watched after the last final text, for stray requests
FIRST_OVERHEAD_P95 = 0.100  # N <= 20: first chunk to first visible text, p95
STALE_SLACK = 0.5  # N <= 20: staleness at most the interval plus this
FIRST_ABOUT = 1.2  # N > 20: "about N/30 s" for the last chat's first text, with 20 % room
DEFAULT_SIZES = (1, 20, 200)
QUICK_SIZES = (1, 20)
TOPICS = ("rivers", "comets", "clocks", "forest")
NAME = re.compile(r"chat ([CP]\d{3})")
PROBES = 20  # new chats that write while the others stream, one every PROBE_GAP s ...
PROBE_GAP = 0.25
PROBES_FROM = 100  # ... in floods this large: smaller sizes judge staleness for N chats alone


def answer_markdown(name: str, long: bool) -> str:
    """The answer for chat `name` (~880 characters, ~600 with `long=False`), in Markdown."""
    topic = TOPICS[int(name[1:]) % len(TOPICS)]
    text = (
        f"## Notes on {topic} for {name}\n\n"
        f"Here is a **short answer** about {topic}, written for chat *{name}* so that every "
        "chat reads its own text. It streams in small pieces, the way a model sends it.\n\n"
        f"- The first point: {topic} change slowly, and that is *fine*.\n"
        f"- The second point uses `inline code` and a [link](https://example.org/{topic}).\n"
        f"- The third point names {name} again, to be sure it is this chat's answer.\n\n"
        f"```python\nprint('hello from {name}')\n```\n\n"
    )
    if long:
        text += (
            "A last paragraph makes the answer as long as a typical reply from a small "
            f"model. It says nothing new about {topic}: it only gives the streamer more text "
            "to pace, so that each chat sees several edits before its final version, and so "
            f"that **{name}** keeps receiving chunks for about seven seconds in all.\n\n"
        )
    return text + f"That is all for {name}."


@cache
def visible_steps(normalised_answer: str, sizes: tuple[int, ...]) -> tuple[int, ...]:
    """`L_k` for each chunk k: characters of the final text fixed by the first k+1 chunks.

    Computed on the answer with its chat name replaced by `C000` (names are fixed-width,
    so the steps are the same for every chat of a topic).
    """
    final = render_markdown(normalised_answer).text
    steps, end = [], 0
    for piece in split_sizes(normalised_answer, sizes):
        end += len(piece)
        steps.append(common_prefix(render_markdown(normalised_answer[:end]).text, final))
    return tuple(steps)


def common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix, by bisection on slices."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def versions(messages: list[BotMessage]) -> list[tuple[float, str]]:
    """Every state of the chat's visible text, oldest first (messages joined by newlines)."""
    events = sorted(
        (when, index, text)
        for index, message in enumerate(messages)
        for when, text in message.history
    )
    current: dict[int, str] = {}
    out = []
    for when, index, text in events:
        current[index] = text
        out.append((when, "\n".join(current[i] for i in sorted(current))))
    return out


@dataclass
class ChatFigures:
    exact: bool
    delays: list[float] = field(default_factory=list)  # per visible chunk, seconds
    first: float = math.nan  # first chunk to first visible text
    first_at: float = math.nan  # when the first text became visible
    stale: float = math.nan  # the longest delay
    never_shown: int = 0  # chunks no version ever showed


def chat_figures(
    answer: str,
    name: str,
    sent: list[tuple[float, str]],
    tg: FakeTelegram,
    chat_id: int,
    sizes: tuple[int, ...],
) -> ChatFigures:
    final = render_markdown(answer).text
    shown = versions(tg.messages(chat_id))
    figures = ChatFigures(exact=bool(shown) and shown[-1][1] == final)
    steps = visible_steps(answer.replace(name, "C000"), sizes)
    lengths = [common_prefix(text, final) for _, text in shown]
    pointer, previous = 0, 0
    for (when, _), step in zip(sent, steps, strict=False):
        if step <= previous:
            continue
        previous = step
        while pointer < len(shown) and lengths[pointer] < step:
            pointer += 1
        if pointer == len(shown):
            figures.never_shown += 1
            continue
        delay = max(0.0, shown[pointer][0] - when)
        if not figures.delays:
            figures.first, figures.first_at = delay, shown[pointer][0]
        figures.delays.append(delay)
    if figures.delays:
        figures.stale = max(figures.delays)
    return figures


@dataclass
class SizeResult:
    n: int
    table: Table
    wall: float


class MetricsScraper:
    """Scrapes the bot's `/metrics` every `every` seconds, as Prometheus would, until stopped."""

    def __init__(self, port: int, every: float = 1.0) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.every = every
        self.scrapes = 0
        self.failures = 0
        self.last = ""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> MetricsScraper:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    async with session.get(self.url) as response:
                        self.last = await response.text()
                        self.scrapes += response.status == 200
                        self.failures += response.status != 200
                except aiohttp.ClientError:
                    self.failures += 1
                await asyncio.sleep(self.every)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_size(
    n: int,
    long: bool,
    workdir: Path,
    shape: Shape,
    loop: str = "asyncio",
    metrics: bool = False,
) -> SizeResult:
    names = [f"C{i:03d}" for i in range(n)]
    answers = {name: answer_markdown(name, long) for name in names}
    finals = {name: render_markdown(answer).text for name, answer in answers.items()}

    def stream_key(body: dict[str, Any]) -> str | None:
        found = NAME.search(last_user_text(body))
        return found.group(1) if found else None

    started = time.monotonic()
    async with (
        FakeTelegram(token=TOKEN, bot_username=BOT_USERNAME) as tg,
        StampedOpenAIServer(stream_key) as model,
    ):
        model.sizes, model.chunk_delay = shape.sizes, shape.delay
        model.reply = lambda body: answers.get(stream_key(body) or "", "unknown chat")
        env = bot_env(
            tg,
            model,
            workdir,
            PHI4BOT_EDIT_INTERVAL=str(INTERVAL),
            PHI4BOT_UVLOOP="1" if loop == "uvloop" else "0",
        )
        scraper = None
        if metrics:
            env["PHI4BOT_METRICS_PORT"] = str(free_port())
            scraper = MetricsScraper(int(env["PHI4BOT_METRICS_PORT"]))
        bot = await start_bot(tg, env, workdir)
        if scraper is not None:
            scraper.start()
        assert bot.proc is not None
        pid = bot.proc.pid
        users = {name: tg.private_user(30_000 + i, name) for i, name in enumerate(names)}
        lag = LoopLag().start()
        sampler = CpuSampler(pid, lambda: sum(len(v) for v in model.sent.values())).start()
        before = proc_figures(pid)
        sent_at = time.monotonic()
        for name, user in users.items():
            assert user.chat is not None
            tg.send_text(user.chat, user, f"Hello from chat {name}: how do answers stream?")

        probe_sent: dict[str, float] = {}

        async def probe() -> None:
            """New chats write once half the flood streams: their requests must not wait."""
            while len(model.sent) < n // 2:
                await asyncio.sleep(0.05)
            for i in range(PROBES):
                name = f"P{i:03d}"
                user = tg.private_user(60_000 + i, name)
                assert user.chat is not None
                probe_sent[name] = time.monotonic()
                tg.send_text(user.chat, user, f"A new question from chat {name}.")
                await asyncio.sleep(PROBE_GAP)

        probing = asyncio.create_task(probe()) if n >= PROBES_FROM else None

        def all_exact() -> bool:
            return all(tg.text_of(user.id) == finals[name] for name, user in users.items())

        mean_size = sum(shape.sizes) / len(shape.sizes)
        stream_seconds = len(next(iter(answers.values()))) / mean_size * shape.delay
        deadline = sent_at + 30 + stream_seconds + 4 * n / BOT_RATE
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            if await wait_for(tg, all_exact, timeout=2.0):
                break
            count = sum(len(r) for r in tg.stats.chat_requests.values())
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            streams_done = len(model.finished) >= n
            if streams_done and time.monotonic() - last_change > 10:
                break  # nothing happens any more: report what is there
        finished_at = time.monotonic()
        if probing is not None:
            probing.cancel()
        await asyncio.sleep(SETTLE)  # watch for requests after the final texts
        after = proc_figures(pid)
        await sampler.stop()
        if scraper is not None:
            await scraper.stop()
        exit_code = await stop_bot(bot)
        worst_lag = await lag.stop()
        bot_lag = bot_loop_lag(bot.log())

        per_chat = {
            name: chat_figures(
                answers[name], name, model.sent.get(name, []), tg, users[name].id, shape.sizes
            )
            for name in names
        }
        dispatch = [model.requested[name] - sent_at for name in names if name in model.requested]
        probed = [model.requested[k] - t for k, t in probe_sent.items() if k in model.requested]
        streams_end = max(model.finished.values(), default=finished_at)
        requests = [r for user in users.values() for r in tg.stats.chat_requests.get(user.id, [])]
        statuses = Counter(r.status for r in requests)
        methods = Counter(r.method for r in requests)
        flood = tg.stats.flood_429

    table = Table(
        f"N = {n} private chats, answers of {len(next(iter(answers.values())))} Markdown "
        f"characters at {shape.describe()}, {loop}, "
        f"PHI4BOT_EDIT_INTERVAL={INTERVAL:g}, metrics {'on' if metrics else 'off'}"
    )
    exact = sum(f.exact for f in per_chat.values())
    table.add("exact final texts", f"{exact}/{n} ({100 * exact / n:.0f} %)", "100 %", exact == n)
    table.add("429s served", str(flood), "0", flood == 0)
    refused = sum(v for k, v in statuses.items() if k not in (200, 429))
    table.add("other refused requests (4xx/5xx)", str(refused))
    per_answer = [len(tg.stats.chat_requests.get(u.id, [])) for u in users.values()]
    table.add(
        "Telegram requests per answer, mean (max)",
        f"{sum(per_answer) / n:.1f} ({max(per_answer)})",
    )
    table.add(
        "  of which sendMessage / editMessageText",
        f"{methods['sendMessage']} / {methods['editMessageText']}",
    )
    times = [r.time for r in requests]
    peak = peak_window_count(times, 1.0) if times else 0
    table.add(
        "peak requests in any 1 s (bot-wide, as received)",
        str(peak),
        f"<= {BOT_RATE:.0f}",
        peak <= BOT_RATE,
    )
    sustained = peak_window_count(times, 5.0) / 5 if times else 0.0
    table.add(
        "peak requests/s averaged over any 5 s",
        f"{sustained:.1f}",
        f"<= {BOT_RATE:.0f}",
        sustained <= BOT_RATE,
    )
    busy = (max(times) - min(times)) if len(times) > 1 else math.nan
    table.add("mean requests/s over the busy span", f"{len(times) / busy:.1f}" if busy else "n/a")

    firsts = [f.first for f in per_chat.values() if not math.isnan(f.first)]
    delays = [d for f in per_chat.values() for d in f.delays]
    stale = [f.stale for f in per_chat.values() if not math.isnan(f.stale)]
    never = sum(f.never_shown for f in per_chat.values())
    first_p95, first_max = percentile(firsts, 95), max(firsts, default=math.nan)
    stale_max = max(stale, default=math.nan)
    table.add("first visible text after first chunk, p50", ms(percentile(firsts, 50)))
    if n <= 20:
        table.add(
            "first visible text after first chunk, p95",
            ms(first_p95),
            f"< {FIRST_OVERHEAD_P95 * 1000:.0f} ms (N <= 20)",
            first_p95 < FIRST_OVERHEAD_P95,
        )
        table.add("first visible text after first chunk, max", ms(first_max))
    else:
        table.add("first visible text after first chunk, p95", ms(first_p95))
        bound = n / BOT_RATE
        table.add(
            "first visible text after first chunk, max",
            secs(first_max),
            f"about N/30 = {bound:.1f} s (<= {FIRST_ABOUT * bound:.1f})",
            first_max <= FIRST_ABOUT * bound,
        )
    table.add("chunk -> visible delay, p50", ms(percentile(delays, 50)))
    table.add("chunk -> visible delay, p95", ms(percentile(delays, 95)))
    beyond = [max(0.0, d - INTERVAL) for d in delays]
    table.add("  beyond the edit interval, p95", ms(percentile(beyond, 95)))
    table.add("chunks never shown", str(never), "0", never == 0)
    vllm = shape.name == "vllm"
    dispatch_p95 = percentile(dispatch, 95)
    table.add(
        "message -> backend request, p95",
        ms(dispatch_p95),
        f"< {DISPATCH_P95:g} s" if vllm else "",
        dispatch_p95 < DISPATCH_P95 if vllm else None,
    )
    table.add("message -> backend request, max", ms(max(dispatch, default=math.nan)))
    table.add("backend requests made", f"{len(dispatch)}/{n}", str(n), len(dispatch) == n)
    if probe_sent:
        probe_p95 = percentile(probed, 95)
        table.add(
            f"new message while {n // 2}+ stream -> backend request, p95 of {len(probe_sent)}",
            ms(probe_p95),
            f"< {DISPATCH_P95:g} s",
            probe_p95 < DISPATCH_P95 and len(probed) == len(probe_sent),
        )
    first_seen = [f.first_at - sent_at for f in per_chat.values() if not math.isnan(f.first_at)]
    last_first = max(first_seen, default=math.nan) if len(first_seen) == n else math.inf
    bound = FIRST_OF_FLOOD * n / BOT_RATE
    table.add(
        "flood start -> every chat shows text",
        secs(last_first),
        f"<= 1.1 N/30 = {bound:.1f} s" if vllm else "",
        last_first <= bound if vllm else None,
    )
    table.add("staleness (longest lag of a chat), p50", secs(percentile(stale, 50)))
    if n <= 20:
        bound = INTERVAL + STALE_SLACK
        target = f"<= interval + {STALE_SLACK:g} = {bound:g} s"
    else:
        bound = 1.5 * n / BOT_RATE + 1
        target = f"<= 1.5 N/30 + 1 = {bound:.1f} s (fair share)"
    table.add("staleness, max over chats", secs(stale_max), target, stale_max <= bound)
    cpu = after.cpu_seconds - before.cpu_seconds if after and before else math.nan
    table.add("bot CPU seconds during the run", f"{cpu:.2f} s")
    share = [
        s
        for (t, *_), s in zip(sampler.samples, sampler.busy_share(), strict=False)
        if t < streams_end
    ]
    streaming_share = sum(share) / len(share) if share else math.nan  # while the model streams
    table.add(
        "bot CPU while answers stream, mean share of one core",
        f"{100 * streaming_share:.0f} %",
        f"< {100 * CPU_SHARE:.0f} %" if vllm else "",
        streaming_share < CPU_SHARE if vllm else None,
    )
    table.add("bot CPU, busiest 0.5 s", f"{100 * max(share, default=math.nan):.0f} %")
    per_chunk = percentile(sampler.per_unit(min_units=20), 50)
    table.add("bot CPU per streamed chunk, p50 (incl. Telegram)", f"{per_chunk * 1e6:.0f} µs")
    if bot_lag is not None:
        table.add("bot's event-loop lag, p99 (max)", f"{ms(bot_lag[1])} ({ms(bot_lag[2])})")
    if scraper is not None:
        table.add(
            "metrics scrapes answered (1/s)",
            f"{scraper.scrapes} ({scraper.failures} failed)",
            "all",
            scraper.failures == 0 and scraper.scrapes > 0,
        )
    table.add("bot peak memory (VmHWM)", mib(after.hwm_kib) if after else "n/a")
    table.add("time to the last final text", secs(finished_at - sent_at))
    table.add("bot stopped by SIGTERM", "exit 0" if exit_code == 0 else f"exit {exit_code}")
    table.add("fakes' event-loop lag, max", ms(worst_lag), "small, or stamps are late")
    return SizeResult(n, table, time.monotonic() - started)


def parse_sizes(text: str) -> tuple[int, ...]:
    sizes = tuple(int(part) for part in text.split(",") if part.strip())
    if not sizes or any(size < 1 or size > 999 for size in sizes):
        raise argparse.ArgumentTypeError("sizes are 1..999, comma-separated")
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=parse_sizes, help="chat counts, e.g. 1,20 (default 1,20,200)")
    parser.add_argument(
        "--quick", action="store_true", help="shorter answers; sizes 1,20 unless --n is given"
    )
    parser.add_argument(
        "--metrics",
        choices=("on", "off"),
        default="off",
        help="serve the metrics port and scrape /metrics every second (default off)",
    )
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), default="fixed", help="how the fake model streams"
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the bot's event loop (uvloop, the default where installed)",
    )
    args = parser.parse_args()
    sizes = args.n or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    results: list[SizeResult] = []
    not_run: list[str] = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="phi4bot-bench-") as tmp:
            try:
                result = asyncio.run(
                    run_size(
                        n,
                        not args.quick,
                        Path(tmp),
                        SHAPES[args.shape],
                        args.loop,
                        args.metrics == "on",
                    )
                )
            except RuntimeError as exc:  # the bot could not start: a failed run
                print(f"N = {n}: {exc}\n", flush=True)
                not_run.append(f"N = {n}")
                continue
        result.table.print()
        print(f"(this size took {result.wall:.0f} s)\n", flush=True)
        results.append(result)
    missed = [f"N={r.n}: {row.metric}" for r in results for row in r.table.misses()]
    return verdict(missed, not_run)


if __name__ == "__main__":
    sys.exit(main())
