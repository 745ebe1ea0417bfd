"""Several bot processes on one PostgreSQL database under load, and a hand-over after SIGKILL.

Run from the repo root: `.venv/bin/python -m bench.scale [--n 200] [--quick]`.

For 1, 2 and 3 `phi4bot run` processes on one PostgreSQL database (a temporary database on
`PHI4BOT_BENCH_POSTGRES_URL`, else `PHI4BOT_TEST_POSTGRES_URL`, else
`postgresql://postgres@127.0.0.1:5432/test`), and for comparison one process on SQLite, N
private chats each ask one question at once; every answer streams ~600 characters of Markdown
at ~30 chunks/s from the fake OpenAI server, through the fake Telegram with Telegram's flood
limits (30/s per bot, 1/s per private chat). One process long-polls; the others stand by and
answer the conversations they claim.

Then, with more than one process, the poller is killed with SIGKILL while 50 chats send a
second question: the hand-over time is from the kill to the first long poll of the process
that takes over, and every one of those questions must still be answered, once.
A turn is *lost* when no answer reached its chat; *duplicated* when the model was asked it
more than once. Figures are printed, never asserted; targets are beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import (
    BOT_USERNAME,
    StampedOpenAIServer,
    bot_env,
    last_user_text,
    peak_window_count,
    secs,
    verdict,
    wait_for,
)
from bench.storage import DEFAULT_POSTGRES_URL, _scratch_database
from bench.streaming import NAME, SHAPES, answer_markdown, chat_figures
from bot.telegram.streaming.render import render_markdown
from tests.e2e.bot_process import TOKEN, BotProcess
from tests.fakes.telegram import FakeTelegram

BOT_RATE = 30
SHAPE = SHAPES["fixed"]  # ~30 chunks/s of 4 characters
HANDOVER_CHATS = 50
HANDOVER_TARGET = 10.0
SETTLE = 1.5
CONFIGS = (("PostgreSQL", 1), ("PostgreSQL", 2), ("PostgreSQL", 3), ("SQLite", 1))


@dataclass
class Result:
    engine: str
    instances: int
    exact: int
    n: int
    flood: int
    peak: int
    all_shown: float
    stale: float
    handover: float
    lost: int
    duplicated: int
    spread: str
    wall: float


@contextlib.asynccontextmanager
async def database(engine: str, workdir: Path) -> AsyncIterator[str]:
    if engine == "SQLite":
        yield f"sqlite:///{workdir / 'bot.db'}"
        return
    server = os.environ.get("PHI4BOT_BENCH_POSTGRES_URL") or os.environ.get(
        "PHI4BOT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL
    )
    async with _scratch_database(server) as url:
        yield url


async def start_instances(
    tg: FakeTelegram, env: dict[str, str], workdir: Path, count: int
) -> list[BotProcess]:
    """Start `count` processes; return once one polls and the others stand by."""
    bots = []
    for number in range(count):
        log = workdir / f"bot{number}.log"
        bots.append(await BotProcess({**env, "PHI4BOT_INSTANCE_ID": f"bot{number}"}, log).start())
        if number == 0:
            if not await wait_for(tg, lambda: tg.stats.requests["getUpdates"] > 0, 60):
                raise RuntimeError("the first process did not start polling")

    def ready() -> bool:
        return all("stands by" in bot.log() for bot in bots[1:])

    if not await wait_for(tg, ready, 60):
        raise RuntimeError("the other processes did not come up")
    return bots


async def answered_texts(url: str) -> Counter[str]:
    """How many answers each process wrote (PostgreSQL only)."""
    if not url.startswith("postgresql"):
        return Counter()
    import asyncpg

    db = await asyncpg.connect(url)
    try:
        rows = await db.fetch(
            "SELECT owner, count(*) FROM turns WHERE role = 'assistant' GROUP BY owner"
        )
    finally:
        await db.close()
    return Counter({str(row[0]): int(row[1]) for row in rows})


async def run_config(engine: str, count: int, n: int, long: bool, workdir: Path) -> Result:
    names = [f"C{i:03d}" for i in range(n)]
    answers = {name: answer_markdown(name, long) for name in names}
    finals = {name: render_markdown(answer).text for name, answer in answers.items()}

    def stream_key(body: dict[str, Any]) -> str | None:
        found = NAME.search(last_user_text(body))
        return found.group(1) if found else None

    def reply(body: dict[str, Any]) -> str:
        text = last_user_text(body)
        if text.startswith("again"):
            return f"second answer for {text.split()[-1]}"
        return answers.get(stream_key(body) or "", "unknown chat")

    started = time.monotonic()
    async with (
        database(engine, workdir) as url,
        FakeTelegram(token=TOKEN, bot_username=BOT_USERNAME) as tg,
        StampedOpenAIServer(stream_key) as model,
    ):
        model.sizes, model.chunk_delay = SHAPE.sizes, SHAPE.delay
        model.reply = reply
        env = bot_env(tg, model, workdir, DATABASE_URL=url, PHI4BOT_EDIT_INTERVAL="1.0")
        bots = await start_instances(tg, env, workdir, count)
        users = {name: tg.private_user(30_000 + i, name) for i, name in enumerate(names)}
        sent_at = time.monotonic()
        for name, user in users.items():
            assert user.chat is not None
            tg.send_text(user.chat, user, f"Hello from chat {name}: how do answers stream?")

        def all_shown() -> bool:
            return all(tg.messages(user.id) for user in users.values())

        def all_exact() -> bool:
            return all(tg.text_of(user.id) == finals[name] for name, user in users.items())

        shown_at = math.nan
        deadline = sent_at + 60 + 4 * n / BOT_RATE
        if await wait_for(tg, all_shown, timeout=deadline - time.monotonic()):
            shown_at = time.monotonic() - sent_at
        await wait_for(tg, all_exact, timeout=max(1.0, deadline - time.monotonic()))
        await asyncio.sleep(SETTLE)
        exact = sum(tg.text_of(user.id) == finals[name] for name, user in users.items())
        per_chat = [
            chat_figures(
                answers[name], name, model.sent.get(name, []), tg, users[name].id, SHAPE.sizes
            )
            for name in names
        ]
        stale = max((f.stale for f in per_chat if not math.isnan(f.stale)), default=math.nan)

        handover = math.nan
        second: list[str] = []
        if count > 1:
            polls = tg.stats.requests["getUpdates"]
            await bots[0].kill()
            killed_at = time.monotonic()
            second = names[:HANDOVER_CHATS]
            for name in second:
                tg.send_text(users[name].chat, users[name], f"again from {name}")
            if await wait_for(tg, lambda: tg.stats.requests["getUpdates"] > polls + 1, timeout=30):
                handover = time.monotonic() - killed_at

            def second_answered() -> bool:
                return all(
                    tg.messages(users[name].id)[-1].text == f"second answer for {name}"
                    for name in second
                )

            await wait_for(tg, second_answered, timeout=30)
        asked = Counter(last_user_text(r.json) for r in model.chat_requests)
        questions = [f"Hello from chat {name}: how do answers stream?" for name in names]
        questions += [f"again from {name}" for name in second]
        answered = {
            name
            for name in second
            if tg.messages(users[name].id)[-1].text == f"second answer for {name}"
        }
        lost = (n - exact) + (len(second) - len(answered))
        duplicated = sum(1 for q in questions if asked[q] > 1)
        owners = await answered_texts(url)
        requests = [r for user in users.values() for r in tg.stats.chat_requests.get(user.id, [])]
        peak = peak_window_count([r.time for r in requests], 1.0) if requests else 0
        flood = tg.stats.flood_429
        for bot in bots:
            with contextlib.suppress(Exception):
                await bot.stop(25.0)
    spread = " / ".join(str(owners[f"bot{i}"]) for i in range(count)) if owners else "-"
    return Result(
        engine,
        count,
        exact,
        n,
        flood,
        peak,
        shown_at,
        stale,
        handover,
        lost,
        duplicated,
        spread,
        time.monotonic() - started,
    )


def print_table(results: list[Result]) -> list[str]:
    """Print the table; return what missed its target."""
    headings = (
        "database",
        "processes",
        "exact final texts",
        "429s",
        "peak req in 1 s",
        "every chat shows text",
        "max staleness",
        "hand-over after SIGKILL",
        "lost",
        "duplicated",
        "answers per process",
    )
    rows = [
        (
            r.engine,
            str(r.instances),
            f"{r.exact}/{r.n}",
            str(r.flood),
            str(r.peak),
            secs(r.all_shown),
            secs(r.stale),
            "-" if r.instances == 1 else secs(r.handover),
            str(r.lost),
            str(r.duplicated),
            r.spread,
        )
        for r in results
    ]
    targets = (
        "",
        "",
        "N/N",
        "0",
        f"<= {BOT_RATE}",
        "",
        "",
        f"<= {HANDOVER_TARGET:g} s",
        "0",
        "0",
        "",
    )
    widths = [
        max(len(h), len(t), *(len(row[i]) for row in rows))
        for i, (h, t) in enumerate(zip(headings, targets, strict=True))
    ]
    for line in (headings, targets):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    misses = [
        f"{r.engine}×{r.instances}: {what}"
        for r in results
        for what, bad in (
            ("exact", r.exact != r.n),
            ("429s", r.flood != 0),
            ("peak", r.peak > BOT_RATE),
            ("hand-over", r.instances > 1 and not r.handover <= HANDOVER_TARGET),
            ("lost", r.lost != 0),
            ("duplicated", r.duplicated != 0),
        )
        if bad
    ]
    return misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="concurrent chats (default 200)")
    parser.add_argument("--quick", action="store_true", help="shorter answers")
    args = parser.parse_args()
    results: list[Result] = []
    not_run: list[str] = []
    for engine, count in CONFIGS:
        with tempfile.TemporaryDirectory(prefix="phi4bot-scale-") as tmp:
            try:
                result = asyncio.run(run_config(engine, count, args.n, not args.quick, Path(tmp)))
            except (RuntimeError, OSError) as exc:  # cannot start, or no server: a failed run
                print(f"{engine} × {count}: {exc}", flush=True)
                not_run.append(f"{engine} × {count}")
                continue
        print(f"{engine} × {count}: done in {result.wall:.0f} s", flush=True)
        results.append(result)
    print(
        f"\nN = {args.n} private chats at once, one process polling; "
        f"then {min(HANDOVER_CHATS, args.n)} more questions while the poller is killed"
    )
    return verdict(print_table(results), not_run)


if __name__ == "__main__":
    sys.exit(main())
