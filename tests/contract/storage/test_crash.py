"""A writer killed with SIGKILL mid-write leaves a sound database holding every commit."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

from storage import SQLiteStore

ROOT = Path(__file__).resolve().parents[3]
WRITER = Path(__file__).resolve().parent / "crash_writer.py"
LINE_TIMEOUT = 20.0


async def _run_and_kill(path: Path, round_number: int, kill_after: int) -> dict[str, set[int]]:
    """Start the writer, SIGKILL it once it has finished `kill_after` answers, and return
    every id it reported (lines already written when it died count: they were committed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(WRITER), str(path), str(round_number),
        stdout=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    assert child.stdout is not None
    reported: dict[str, set[int]] = {"user": set(), "answer": set(), "finished": set()}
    try:
        while len(reported["finished"]) < kill_after:
            line = await asyncio.wait_for(child.stdout.readline(), LINE_TIMEOUT)
            assert line, f"the writer exited early with {await child.wait()}"
            kind, turn_id = line.decode().split()
            reported[kind].add(int(turn_id))
    finally:
        child.send_signal(signal.SIGKILL)
        rest = await asyncio.wait_for(child.stdout.read(), LINE_TIMEOUT)
        assert await child.wait() == -signal.SIGKILL
    for text in rest.decode().splitlines():
        kind, turn_id = text.split()
        reported[kind].add(int(turn_id))
    return reported


def _integrity(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


async def test_sigkill_mid_write_loses_no_committed_turn(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    interrupted_before: set[int] = set()
    for round_number, kill_after in enumerate((25, 60, 110, 170, 240)):
        reported = await _run_and_kill(path, round_number, kill_after)
        assert _integrity(path) == "ok"
        async with SQLiteStore(path, max_attachment_bytes=1) as store:
            pending = await store.unfinished_answers()
            db = store._db
            assert db is not None
            sql = "SELECT id, status FROM turns WHERE role = 'assistant'"
            rows = await db.execute_fetchall(sql)
            status = {row[0]: row[1] for row in rows}
            users = {row[0] for row in await db.execute_fetchall("SELECT id FROM turns")}
            orphans = list(
                await db.execute_fetchall(
                    "SELECT count(*) FROM attachments a LEFT JOIN blobs b USING (sha256) "
                    "WHERE b.sha256 IS NULL"
                )
            )
        assert reported["user"] <= users
        assert reported["answer"] <= set(status)
        assert all(status[turn] == "complete" for turn in reported["finished"])
        assert orphans == [(0,)]
        interrupted = {turn for turn, state in status.items() if state == "interrupted"}
        reported_now = {p.assistant_turn_id for p in pending if p.assistant_turn_id is not None}
        assert reported_now == interrupted - interrupted_before
        assert "streaming" not in status.values()
        interrupted_before = interrupted
