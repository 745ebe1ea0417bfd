"""How fast the conversation store appends and loads history, and how large it grows.

Run `python bench/storage.py`: it builds a 10,000-turn conversation in a temporary SQLite
file through the store's own interface, then times single operations against it and prints
p50/p95 beside the targets. Always exits 0; the table says whether targets were met.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

# This file is named like the package it measures: put the project root first on the path
# and this folder out of it, so `import storage` finds the package, not this script.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import aiosqlite  # noqa: E402

from storage import AnswerStatus, ConversationKey, NewAttachment, SQLiteStore  # noqa: E402

EXCHANGES = 5_000  # a question and an answer each: 10,000 turns
PHOTO_EVERY = 10  # every tenth question carries a photo
PHOTO_BYTES = 30 * 1024
QUESTION = "How does the tide work near the harbour, and when is it safe to sail out? " * 3
ANSWER = "The tide follows the moon; near the harbour the flood lasts about six hours. " * 8
HISTORY_TURNS = 50
APPEND_RUNS = 2_000
HISTORY_RUNS = 1_000
SLOW_RUNS = 200


@dataclass(frozen=True)
class Timing:
    name: str
    runs: int
    p50_ms: float
    p95_ms: float
    target_p95_ms: float | None


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


async def _build(store: SQLiteStore, conversation: int) -> int:
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


async def run(folder: Path) -> tuple[list[Timing], float, float, float]:
    path = folder / "bench.db"
    key = ConversationKey(1)
    budget = HISTORY_TURNS // 2 * (len(QUESTION) + len(ANSWER) + 8)
    async with SQLiteStore(path, max_attachment_bytes=20 << 20) as store:
        conversation = await store.current_conversation(key)
        started = time.perf_counter()
        photo_bytes = await _build(store, conversation)
        build_seconds = time.perf_counter() - started
        await store.close()
        turns = EXCHANGES * 2
        size_per_thousand = path.stat().st_size / (turns / 1000)
        photos_per_thousand = photo_bytes / (turns / 1000)
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
            await _time("append a user turn (text)", APPEND_RUNS, 2.0, append_text),
            await _time("append a user turn + new 30 KB photo", SLOW_RUNS, None, append_photo),
            await _time("user turn + start + finish answer", SLOW_RUNS, None, answer),
            await _time("history: last 50 turns, media metadata", HISTORY_RUNS, 5.0, load(0)),
            await _time("history: last 50 turns, 3 photos' bytes", SLOW_RUNS, None, load(3)),
        ]
    return timings, size_per_thousand, photos_per_thousand, build_seconds


def _print(timings: list[Timing], size: float, photos: float, build_seconds: float) -> None:
    print(
        f"phi4bot storage benchmark: SQLite {sqlite3.sqlite_version}, "
        f"aiosqlite {aiosqlite.__version__}, WAL, synchronous=NORMAL, {os.cpu_count()} CPUs"
    )
    print(
        f"conversation of {EXCHANGES * 2:,} turns ({len(QUESTION)}-char questions, "
        f"{len(ANSWER)}-char answers, a 30 KB photo every {PHOTO_EVERY} questions) "
        f"built in {build_seconds:.1f} s\n"
    )
    print(f"{'operation':<42}{'runs':>6}{'p50 ms':>9}{'p95 ms':>9}  {'target p95':<12}result")
    for t in timings:
        target = "—" if t.target_p95_ms is None else f"< {t.target_p95_ms:g} ms"
        verdict = ""
        if t.target_p95_ms is not None:
            verdict = "met" if t.p95_ms < t.target_p95_ms else "MISSED"
        print(f"{t.name:<42}{t.runs:>6}{t.p50_ms:>9.3f}{t.p95_ms:>9.3f}  {target:<12}{verdict}")
    text = size - photos
    print(
        f"\ndatabase size per 1,000 turns: {size / 1e6:.2f} MB = {text / 1e6:.2f} MB text, "
        f"metadata and indexes + {photos / 1e6:.2f} MB photo bytes (stored once each; no target)"
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="phi4bot-bench-") as folder:
        _print(*asyncio.run(run(Path(folder))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
