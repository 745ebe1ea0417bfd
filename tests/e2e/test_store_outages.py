"""The database failing under the real bot: a message written meanwhile is held and answered
once the store is back, exactly once, and never sent to the model before it is stored."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.databases import fetch_all
from tests.e2e.conftest import StartBot, last_user_text
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram
from tests.tcp_proxy import TcpProxy

LOCK_SECONDS = 12.0
OUTAGE_SECONDS = 15.0

_HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
db.execute("COMMIT")
"""


@contextlib.asynccontextmanager
async def write_lock_held_by_another_process(path: Path) -> AsyncIterator[None]:
    """Another process holds the database's write lock (`BEGIN EXCLUSIVE`) for the block."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLD_LOCK,
        str(path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"locked\n"
        yield
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 10)


def stored_user_turns(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT text FROM turns WHERE role = 'user'")]


async def test_messages_written_while_sqlite_is_locked_are_answered_once_after_in_order(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, tmp_path: Path
) -> None:
    model.reply = lambda body: f"echo: {last_user_text(body)}"
    bot = await start_bot()
    alice = tg.private_user(42, "Alice")
    requests_before = len(model.chat_requests)
    loop = asyncio.get_running_loop()
    async with write_lock_held_by_another_process(tmp_path / "bot.db"):
        locked_at = loop.time()
        tg.send_text(alice.chat, alice, "are you there?")
        await bot.wait_for_log("the database is locked by another writer", timeout=10)
        tg.send_text(alice.chat, alice, "and then?")  # waits behind the first, in order
        await asyncio.sleep(LOCK_SECONDS - (loop.time() - locked_at))  # the outage itself
        assert len(model.chat_requests) == requests_before, "the model was asked before storing"
        assert not tg.messages(42)
    await tg.wait_until(lambda: len(tg.messages(42)) == 2, timeout=15)
    assert [m.text for m in tg.messages(42)] == ["echo: are you there?", "echo: and then?"]
    await bot.wait_for_log("the database works again", timeout=5)
    asked = [last_user_text(r.json) for r in model.chat_requests[requests_before:]]
    assert asked == ["are you there?", "and then?"]
    assert stored_user_turns(tmp_path / "bot.db") == ["are you there?", "and then?"]
    assert await bot.stop() == 0


async def test_five_people_writing_while_postgresql_is_unreachable_are_answered_once_after(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, postgres_url: str
) -> None:
    parts = urlsplit(postgres_url)
    async with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        proxied = urlunsplit(
            parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.listen_port}")
        )
        model.reply = lambda body: f"echo: {last_user_text(body)}"
        bot = await start_bot(DATABASE_URL=proxied)
        people = [tg.private_user(100 + n, f"Person {n}") for n in range(5)]
        requests_before = len(model.chat_requests)
        loop = asyncio.get_running_loop()
        proxy.cut()
        cut_at = loop.time()
        for n, person in enumerate(people):
            tg.send_text(person.chat, person, f"question {n}")
        await bot.wait_for_log("the database server cannot be reached", timeout=10)
        await asyncio.sleep(OUTAGE_SECONDS - (loop.time() - cut_at))  # the outage itself
        assert len(model.chat_requests) == requests_before, "the model was asked before storing"
        assert not any(tg.messages(person.id) for person in people)
        for person in people:  # each message taken from Telegram and held by the bot
            assert bot.log_lines(f"in chat {person.id} failed"), f"chat {person.id} not held"
        proxy.restore()
        for n, person in enumerate(people):
            await tg.wait_until(
                lambda n=n, person=person: tg.text_of(person.id) == f"echo: question {n}",  # type: ignore[misc]
                timeout=15,
            )
        assert len(model.chat_requests) == requests_before + 5
        assert all(len(tg.messages(person.id)) == 1 for person in people)
        stored = await fetch_all(postgres_url, "SELECT text FROM turns WHERE role = 'user'")
        assert sorted(row[0] for row in stored) == [f"question {n}" for n in range(5)]
        assert proxy.refused > 0, "the outage never reached the bot"
        assert await bot.stop() == 0


def small_disk_command(mount_point: Path) -> tuple[str, ...]:
    """Runs a command with a tmpfs of the size that follows mounted at `mount_point`, seen by
    that process alone (a mount namespace of its own); skips the test where the system
    does not allow unprivileged namespaces."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to give the bot a small disk of its own")
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"user and mount namespaces are not allowed here: {probe.stderr!r}")
    mount_point.mkdir()
    script = 'mount -t tmpfs -o size="$1" tmpfs "$0" && shift && exec "$@"'
    return ("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script)


def fill(path: Path) -> None:
    """Write `path` until the disk has no room left."""
    with path.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


async def test_a_full_disk_is_told_to_the_user_and_the_bot_carries_on(
    tg: FakeTelegram, model: FakeOpenAIServer, start_bot: StartBot, tmp_path: Path
) -> None:
    # A real full disk (ENOSPC, which SQLite reports as SQLITE_FULL): `PRAGMA max_page_count`
    # cannot stand in for it from outside, as it limits only the connection that sets it.
    disk = tmp_path / "disk"
    prefix = (*small_disk_command(disk), str(disk), "8m")
    model.reply = lambda body: f"echo: {last_user_text(body)}"
    bot = await start_bot(
        prefix=prefix, DATABASE_URL=f"sqlite:///{disk / 'bot.db'}", PHI4BOT_STORE_RETRY="2"
    )
    alice = tg.private_user(42, "Alice")
    tg.send_text(alice.chat, alice, "first")
    await tg.wait_until(lambda: tg.text_of(42) == "echo: first", timeout=10)
    assert bot.proc is not None
    filler = Path(f"/proc/{bot.proc.pid}/root") / disk.relative_to("/") / "filler"
    fill(filler)  # the bot's disk, as the bot sees it

    requests_before = len(model.chat_requests)
    tg.send_text(alice.chat, alice, "second")
    await tg.wait_until(lambda: len(tg.messages(42)) == 2, timeout=10)
    assert tg.messages(42)[1].text == (
        "I could not save your message: my database is not available right now. "
        "Please send it again in a minute."
    )
    assert bot.log_lines("the database's disk is full (SQLITE_FULL")
    assert bot.log_lines("1 turns refused since start-up")
    assert len(model.chat_requests) == requests_before

    filler.unlink()
    tg.send_text(alice.chat, alice, "third")
    await tg.wait_until(lambda: len(tg.messages(42)) == 3, timeout=10)
    assert tg.messages(42)[2].text == "echo: third"
    assert len(model.chat_requests) == requests_before + 1
    history = [m for m in model.chat_requests[-1].json["messages"] if m["role"] == "user"]
    assert [last_user_text({"messages": [m]}) for m in history] == ["first", "third"]
    assert bot.running
    assert await bot.stop() == 0
