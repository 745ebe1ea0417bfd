"""How fast the conversation store appends and loads history, and how large it grows.

Run `python -m bench.storage`: on each engine it builds a 10,000-turn conversation through
the store's own interface (a temporary SQLite file; a temporary database on the PostgreSQL
server named by `PHI4BOT_BENCH_POSTGRES_URL`, else `PHI4BOT_TEST_POSTGRES_URL`, else
`postgresql://postgres@127.0.0.1:5432/test`), then times single operations against it and
prints p50/p95 beside the targets, one column per engine. Without a reachable PostgreSQL
server its column says why, and the run fails. Exits non-zero when a target is missed.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiosqlite
import asyncpg

from bench.harness import verdict
from storage import AnswerStatus, ConversationKey, NewAttachment, Store, store_for
from storage.url import redact

EXCHANGES = 5_000  # a question and an answer each: 10,000 turns
PHOTO_EVERY = 10  # every tenth question carries a photo
PHOTO_BYTES = 30 * 1024
QUESTION = "How does the tide work near the harbour, and when is it safe to sail out? " * 3
ANSWER = "The tide follows the moon; near the harbour the flood lasts about six hours. " * 8
HISTORY_TURNS = 50
APPEND_RUNS = 2_000
HISTORY_RUNS = 1_000
SLOW_RUNS = 200
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
TARGETS_MS = {  # p95 targets per engine: appending a text turn, loading the last 50 turns
    "SQLite": {"append": 2.0, "history": 5.0},
    "PostgreSQL": {"append": 5.0, "history": 10.0},
}


@dataclass(frozen=True)
class Timing:
    name: str
    runs: int
    p50_ms: float
    p95_ms: float
    target_p95_ms: float | None


@dataclass(frozen=True)
class EngineResult:
    """One engine's column: its timings and sizes, or why it was not measured."""

    engine: str
    timings: list[Timing]
    size_per_thousand: float = 0.0
    photos_per_thousand: float = 0.0
    build_seconds: float = 0.0
    skipped: str | None = None


async def _time(
    name: str, runs: int, target: float | None, op: Callable[[int], Awaitable[object]]
) -> Timing:
    """p50/p95 of `runs` calls of `op`, after a few untimed warm-up calls."""
    for n in range(10):
        await op(-1 - n)
    samples = []
    for n in range(runs):
        start = time.perf_counter()
        await op(n)
        samples.append((time.perf_counter() - start) * 1000)
    cuts = statistics.quantiles(samples, n=100)
    return Timing(name, runs, cuts[49], cuts[94], target)


async def _build(store: Store, conversation: int) -> int:
    """The long conversation, written as the bot writes it; returns the photo bytes sent."""
    photo_bytes = 0
    for n in range(EXCHANGES):
        media = []
        if n % PHOTO_EVERY == 0:
            media = [NewAttachment("image", "image/jpeg", os.urandom(PHOTO_BYTES), f"{n}.jpg")]
            photo_bytes += PHOTO_BYTES
        user = await store.add_user_turn(
            conversation, text=f"{n}: {QUESTION}", chat_id=1, message_id=n, attachments=media
        )
        assert user is not None
        answer = await store.start_answer(conversation, user)
        await store.finish_answer(
            answer, text=ANSWER, status=AnswerStatus.COMPLETE, message_ids=[n + 1]
        )
    return photo_bytes


async def measure(
    engine: str,
    url: str,
    size: Callable[[], Awaitable[int]],
    settle: Callable[[], Awaitable[None]] | None = None,
) -> EngineResult:
    """Build the long conversation on the store at `url`, let the database `settle` (gather
    planner statistics), then time each operation."""
    targets = TARGETS_MS[engine]
    key = ConversationKey(1)
    budget = HISTORY_TURNS // 2 * (len(QUESTION) + len(ANSWER) + 8)
    store = store_for(url, max_attachment_bytes=20 << 20)
    await store.open()
    try:
        conversation = await store.current_conversation(key)
        started = time.perf_counter()
        photo_bytes = await _build(store, conversation)
        build_seconds = time.perf_counter() - started
        await store.close()
        turns = EXCHANGES * 2
        size_per_thousand = await size() / (turns / 1000)
        photos_per_thousand = photo_bytes / (turns / 1000)
        if settle is not None:
            await settle()
        await store.open()

        loaded = await store.history(conversation, char_budget=budget, media_limit=0)
        assert len(loaded) == HISTORY_TURNS, len(loaded)
        other = await store.current_conversation(ConversationKey(2))
        # A new photo each time (negative indexes serve the warm-up calls), so the timing
        # includes storing the bytes, not only finding them already there.
        photos = [
            NewAttachment("image", "image/jpeg", os.urandom(PHOTO_BYTES), f"new{n}.jpg")
            for n in range(SLOW_RUNS + 10)
        ]

        async def append_text(n: int) -> object:
            return await store.add_user_turn(other, text=QUESTION, chat_id=2, message_id=None)

        async def append_photo(n: int) -> object:
            return await store.add_user_turn(
                other, text=QUESTION, chat_id=2, message_id=None, attachments=[photos[n]]
            )

        async def answer(n: int) -> None:
            user = await store.add_user_turn(other, text="q", chat_id=2, message_id=None)
            assert user is not None
            reply = await store.start_answer(other, user)
            await store.finish_answer(reply, text=ANSWER, status=AnswerStatus.COMPLETE)

        def load(media: int) -> Callable[[int], Awaitable[object]]:
            return lambda n: store.history(conversation, char_budget=budget, media_limit=media)

        timings = [
            await _time("append a user turn (text)", APPEND_RUNS, targets["append"], append_text),
            await _time("append a user turn + new 30 KB photo", SLOW_RUNS, None, append_photo),
            await _time("user turn + start + finish answer", SLOW_RUNS, None, answer),
            await _time(
                "history: last 50 turns, media metadata", HISTORY_RUNS, targets["history"], load(0)
            ),
            await _time("history: last 50 turns, 3 photos' bytes", SLOW_RUNS, None, load(3)),
        ]
    finally:
        await store.close()
    return EngineResult(engine, timings, size_per_thousand, photos_per_thousand, build_seconds)


async def run_sqlite(folder: Path) -> EngineResult:
    path = folder / "bench.db"

    async def size() -> int:
        return path.stat().st_size

    return await measure("SQLite", f"sqlite:///{path}", size)


@asynccontextmanager
async def _scratch_database(server_url: str) -> AsyncIterator[str]:
    """A database of its own on the server, dropped afterwards."""
    name = f"phi4bot_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(server_url)
        try:
            yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run_postgres(server_url: str) -> EngineResult:
    try:
        async with _scratch_database(server_url) as url:

            async def size() -> int:
                db = await asyncpg.connect(url)
                try:
                    return int(await db.fetchval("SELECT pg_database_size(current_database())"))
                finally:
                    await db.close()

            empty = await size()

            async def grown() -> int:
                return await size() - empty

            async def analyze() -> None:
                # What autovacuum does within a minute of a table growing; without it the
                # planner still believes the freshly filled tables are empty.
                db = await asyncpg.connect(url)
                try:
                    await db.execute("ANALYZE")
                finally:
                    await db.close()

            return await measure("PostgreSQL", url, grown, analyze)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = f"{redact(server_url)} not usable: {type(exc).__name__}: {exc}"
        return EngineResult("PostgreSQL", [], skipped=reason)


def _cell(t: Timing | None) -> str:
    if t is None:
        return f"{'—':>8}{'—':>8}  {'':<14}"
    target, verdict = "", ""
    if t.target_p95_ms is not None:
        verdict = "met" if t.p95_ms < t.target_p95_ms else "MISSED"
        target = f"<{t.target_p95_ms:g} {verdict}"
    return f"{t.p50_ms:>8.3f}{t.p95_ms:>8.3f}  {target:<14}"


def _print(results: list[EngineResult]) -> None:
    print(
        f"phi4bot storage benchmark: SQLite {sqlite3.sqlite_version} (aiosqlite "
        f"{aiosqlite.__version__}, WAL, synchronous=NORMAL), asyncpg {asyncpg.__version__}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"conversation of {EXCHANGES * 2:,} turns ({len(QUESTION)}-char questions, "
        f"{len(ANSWER)}-char answers, a 30 KB photo every {PHOTO_EVERY} questions)"
    )
    for r in results:
        if r.skipped:
            print(f"{r.engine}: not measured ({r.skipped})")
        else:
            print(f"{r.engine}: built in {r.build_seconds:.1f} s")
    print()
    header = "".join(f"{r.engine + ' p50/p95 ms, target p95':<32}" for r in results)
    print(f"{'operation':<42}{'runs':>6}  {header}")
    names = [(t.name, t.runs) for t in next((r.timings for r in results if r.timings), [])]
    for index, (name, runs) in enumerate(names):
        cells = "".join(_cell(r.timings[index] if r.timings else None) + " " * 2 for r in results)
        print(f"{name:<42}{runs:>6}  {cells}")
    print("\nsize per 1,000 turns (no target; photo bytes are stored once each):")
    for r in results:
        if r.skipped:
            continue
        text = r.size_per_thousand - r.photos_per_thousand
        print(
            f"  {r.engine:<11} {r.size_per_thousand / 1e6:.2f} MB = {text / 1e6:.2f} MB text, "
            f"metadata and indexes + {r.photos_per_thousand / 1e6:.2f} MB photo bytes"
        )


async def _run_all(folder: Path) -> list[EngineResult]:
    server = os.environ.get("PHI4BOT_BENCH_POSTGRES_URL") or os.environ.get(
        "PHI4BOT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL
    )
    return [await run_sqlite(folder), await run_postgres(server)]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="phi4bot-bench-") as folder:
        results = asyncio.run(_run_all(Path(folder)))
    _print(results)
    missed = [
        f"{r.engine}: {t.name}"
        for r in results
        for t in r.timings
        if t.target_p95_ms is not None and t.p95_ms >= t.target_p95_ms
    ]
    return verdict(missed, [r.engine for r in results if r.skipped])


if __name__ == "__main__":
    sys.exit(main())
