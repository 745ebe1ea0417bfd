"""How much CPU the bot spends per streamed chunk when the backends send as fast as they can.

Run from the repo root: `.venv/bin/python -m bench.ingest [--n 1,200,1000]
[--backend openai,space]`.

The real `phi4bot run` process talks to the fake Telegram (Telegram's flood limits, so the
edits are paced as in production) and to a fake backend (the OpenAI-compatible server or the
Gradio Space) that streams N answers of ~770 characters (N = 1: one 20 times as long) in
2–8-character chunks at once, yielding to its event loop between chunks but never waiting.
The fakes run in this process, the bot in its own, so the bot's CPU is read from /proc
without the fakes in it.

Figures: bot CPU per chunk (the p50 over 0.2 s samples while the answers stream, and the
mean over the whole streaming phase), the chunks per second one core would sustain at that
cost, the bot's own event-loop lag (it logs a summary when it stops), how long after the
flood's start each backend request left (p95), and the bot's peak RSS.

The time to the backend request is judged up to N = 200 messages at once (the target: within
1 s, also while 200 other answers stream). A thousand at once, against backends sending flat
out, saturates the core with chunks of the answers already started; that figure is printed
for comparison, not judged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

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
from bench.streaming import answer_markdown
from bot.telegram.streaming.render import render_markdown
from tests.e2e.bot_process import TOKEN
from tests.fakes.space import FakeSpace
from tests.fakes.telegram import FakeTelegram

SIZES = vllm_sizes()
NO_WAIT = 1e-6  # seconds between chunks: a yield to the fake's loop, never a real wait
BOT_RATE = 30.0
US_PER_CHUNK = 60.0  # target: bot CPU per chunk, µs
CHUNKS_PER_CORE = 15_000  # target: chunks/s one core sustains
LAG_P99 = 0.050  # target at N = 1000
RSS_MIB = 250  # target at N = 1000
DISPATCH_P95 = 1.0  # a backend request leaves within this of its message ...
DISPATCH_FLOOD = 200  # ... when up to this many messages arrive at once
NAME = re.compile(r"chat (C\d{3,4})")
DEFAULT_SIZES = (1, 200, 1000)
LONE_REPEAT = 20
BACKENDS = ("openai", "space")


class StampedSpace(FakeSpace):
    """The fake Space, in vLLM-like pieces, noting when each chat's `/queue/join` arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.joined: dict[str, float] = {}

    def pieces(self, answer: str) -> list[str]:
        return split_sizes(answer, SIZES)

    async def _join(self, request: web.Request) -> web.Response:
        found = NAME.search(await request.text())
        if found:
            self.joined.setdefault(found.group(1), time.monotonic())
        return await super()._join(request)


@dataclass
class Fake:
    """One fake backend as the bench sees it."""

    env: dict[str, str]
    chunks: Callable[[], int]  # content chunks sent so far
    finished: Callable[[], int]  # answers completely sent
    requested: Callable[[], dict[str, float]]  # chat name -> when its request arrived


@contextlib.asynccontextmanager
async def fake_backend(kind: str, answers: dict[str, str]) -> AsyncIterator[Fake]:
    if kind == "openai":

        def stream_key(body: dict[str, Any]) -> str | None:
            found = NAME.search(last_user_text(body))
            return found.group(1) if found else None

        async with StampedOpenAIServer(stream_key) as model:
            model.sizes, model.chunk_delay = SIZES, NO_WAIT
            model.reply = lambda body: answers.get(stream_key(body) or "", "unknown chat")
            model.stamp_chunks = False
            yield Fake(
                {"PHI4_BACKEND": "openai", "OPENAI_BASE_URL": model.base_url},
                lambda: sum(r.chunks_sent for r in model.chat_requests),
                lambda: len(model.finished),
                lambda: model.requested,
            )
        return
    async with StampedSpace() as space:
        space.chunk_delay = NO_WAIT

        def reply(record: Any) -> str:
            found = NAME.search(str(record.history))
            return answers.get(found.group(1) if found else "", "unknown chat")

        space.reply = reply
        yield Fake(
            {"PHI4_BACKEND": "space", "PHI4_SPACE_URL": space.url, "HF_ENDPOINT": space.hub_url},
            lambda: sum(r.chunks_sent for r in space.requests),
            lambda: sum(r.completed for r in space.requests),
            lambda: space.joined,
        )


async def run_one(kind: str, n: int, workdir: Path, event_loop: str = "asyncio") -> Table:
    names = [f"C{i:03d}" for i in range(n)]
    # one answer alone would last a tenth of a second: 20 times as long gives CPU figures
    repeat = LONE_REPEAT if n == 1 else 1
    answers = {name: "\n\n".join([answer_markdown(name, True)] * repeat) for name in names}
    finals = {name: render_markdown(answer).text for name, answer in answers.items()}
    async with (
        FakeTelegram(token=TOKEN, bot_username=BOT_USERNAME) as tg,
        fake_backend(kind, answers) as fake,
    ):
        env = bot_env(
            tg,
            _NoModel(),
            workdir,
            PHI4BOT_UVLOOP="1" if event_loop == "uvloop" else "0",
            **fake.env,
        )
        if kind != "openai":
            env.pop("OPENAI_BASE_URL")  # the Space bench has no OpenAI server to point at
        bot = await start_bot(tg, env, workdir)
        assert bot.proc is not None
        pid = bot.proc.pid
        users = {name: tg.private_user(40_000 + i, name) for i, name in enumerate(names)}
        sampler = CpuSampler(pid, fake.chunks, period=0.2).start()
        fakes_lag = LoopLag().start()
        before = proc_figures(pid)
        sent_at = time.monotonic()
        for name, user in users.items():
            assert user.chat is not None
            tg.send_text(user.chat, user, f"Hello from chat {name}: how fast can you read?")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120 + n * 0.1
        while fake.finished() < n and loop.time() < deadline:
            await asyncio.sleep(0.1)
        streams_end = time.monotonic()
        during = proc_figures(pid)
        chunks = fake.chunks()

        def exact(name: str) -> bool:
            # one answer may span several messages, cut where a newline was: compare words
            return tg.text_of(users[name].id).split() == finals[name].split()

        def all_exact() -> bool:
            return all(exact(name) for name in names)

        exact_in_time = await wait_for(tg, all_exact, timeout=30 + 3 * n / BOT_RATE)
        exact_count = sum(exact(name) for name in names)
        await sampler.stop()
        worst_fake_lag = await fakes_lag.stop()
        after = proc_figures(pid)
        exit_code = await stop_bot(bot, timeout=60)
        log_text = bot.log()
        lag = bot_loop_lag(log_text)
        problems = [
            line for line in log_text.splitlines() if " WARNING " in line or " ERROR " in line
        ]
        if problems:
            print(f"({len(problems)} warnings or errors in the bot's log; the first ones:)")
            print("\n".join(problems[:8]), flush=True)
        requested = fake.requested()
        dispatch = [requested[name] - sent_at for name in names if name in requested]

    table = Table(
        f"{kind} backend, N = {n} answers of ~{len(answers[names[0]])} characters "
        f"in 2-8-character chunks, sent without pause, {event_loop}"
    )
    mean = (
        (during.cpu_seconds - before.cpu_seconds) / chunks * 1e6
        if during and before and chunks
        else math.nan
    )
    samples = sampler.per_unit(min_units=20, until=streams_end)
    p50 = percentile(samples, 50) * 1e6 if len(samples) >= 3 else mean
    table.add("chunks streamed", f"{chunks}")
    table.add(
        "bot CPU per chunk, p50 of 0.2 s samples (the mean if < 3)",
        f"{p50:.0f} µs",
        f"<= {US_PER_CHUNK:.0f} µs",
        p50 <= US_PER_CHUNK,
    )
    table.add("bot CPU per chunk, mean over the streaming phase", f"{mean:.0f} µs")
    sustained = 1e6 / p50 if p50 else math.nan
    table.add(
        "chunks/s one core sustains (1 / p50)",
        f"{sustained:,.0f}",
        f">= {CHUNKS_PER_CORE:,}",
        sustained >= CHUNKS_PER_CORE,
    )
    table.add(
        "chunks/s achieved (both fakes on the same 2 cores)",
        f"{chunks / (streams_end - sent_at):,.0f}",
    )
    table.add("streaming phase", secs(streams_end - sent_at))
    if lag is not None:
        big = n >= 1000
        table.add(
            "bot's event-loop lag, p99",
            ms(lag[1]),
            f"< {LAG_P99 * 1000:.0f} ms (N = 1000)" if big else "",
            lag[1] < LAG_P99 if big else None,
        )
        table.add("bot's event-loop lag, max", ms(lag[2]))
    else:
        table.add("bot's event-loop lag, p99", "not logged")
    dispatch_p95 = percentile(dispatch, 95)
    judged = n <= DISPATCH_FLOOD  # a thousand at once is beyond what the target speaks of
    table.add(
        "message -> backend request, p95",
        ms(dispatch_p95),
        f"< {DISPATCH_P95:g} s (N <= {DISPATCH_FLOOD})" if judged else "(reported only)",
        dispatch_p95 < DISPATCH_P95 if judged else None,
    )
    table.add("backend requests made", f"{len(dispatch)}/{n}", str(n), len(dispatch) == n)
    hwm = after.hwm_kib if after else math.nan
    big = n >= 1000
    table.add(
        "bot peak RSS (VmHWM)",
        mib(hwm),
        f"< {RSS_MIB} MiB (N = 1000)" if big else "",
        hwm / 1024 < RSS_MIB if big else None,
    )
    total = after.cpu_seconds - before.cpu_seconds if after and before else math.nan
    table.add("bot CPU seconds, whole run (incl. Telegram tail)", f"{total:.2f} s")
    table.add(
        "final texts, word for word",
        f"{exact_count}/{n}",
        "all",
        exact_count == n and exact_in_time,
    )
    table.add("bot stopped by SIGTERM", "exit 0" if exit_code == 0 else f"exit {exit_code}")
    table.add("fakes' event-loop lag, max", ms(worst_fake_lag), "small, or they are the limit")
    return table


class _NoModel:
    """`bot_env` wants an OpenAI fake; the backend's own variables override what it sets."""

    base_url = ""


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="1,200,1000", help="answer counts (default 1,200,1000)")
    parser.add_argument("--backend", default="openai,space", help="openai, space or both")
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the bot's event loop (uvloop, the default where installed)",
    )
    args = parser.parse_args()
    sizes = tuple(int(n) for n in parse_list(args.n)) or DEFAULT_SIZES
    backends = parse_list(args.backend)
    if not set(backends) <= set(BACKENDS) or any(not 1 <= n <= 9999 for n in sizes):
        parser.error("backends are openai and space; sizes are 1..9999")
    tables: list[Table] = []
    not_run: list[str] = []
    for kind in backends:
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix="phi4bot-ingest-") as tmp:
                try:
                    table = asyncio.run(run_one(kind, n, Path(tmp), args.loop))
                except RuntimeError as exc:
                    print(f"{kind}, N = {n}: {exc}\n", flush=True)
                    not_run.append(f"{kind}, N = {n}")
                    continue
            table.print()
            print(flush=True)
            tables.append(table)
    missed = [f"{t.title.split(' answers')[0]}: {r.metric}" for t in tables for r in t.misses()]
    return verdict(missed, not_run)


if __name__ == "__main__":
    sys.exit(main())
