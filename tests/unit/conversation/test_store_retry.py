"""Trying store writes again through a passing outage: pauses, the limit, and the log."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from bot.conversation.errors import StoreStillUnavailable
from bot.conversation.store_retry import StoreRetry
from storage import StoreUnavailable, Unavailability


class VirtualTime:
    """A clock and a sleep for `StoreRetry` that take no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


class FlakyWrite:
    """Fails with `error` for the first `failures` calls, each taking `cost` seconds."""

    def __init__(self, time: VirtualTime, error: Exception, failures: int, cost: float = 0.0):
        self.time = time
        self.error = error
        self.failures = failures
        self.cost = cost
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        self.time.now += self.cost
        if self.calls <= self.failures:
            raise self.error
        return "stored"


def locked() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
    return error


def retry(time: VirtualTime, limit: float = 60.0) -> StoreRetry:
    return StoreRetry(limit, first_pause=0.1, longest_pause=1.0, clock=time.clock, sleep=time.sleep)


async def test_a_write_is_tried_again_with_growing_pauses_until_it_works() -> None:
    time = VirtualTime()
    write = FlakyWrite(time, locked(), failures=6)
    assert await retry(time).run("storing message 1 in chat 42", write) == "stored"
    assert write.calls == 7
    assert time.pauses == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


async def test_past_the_limit_the_write_is_given_up_with_the_reason() -> None:
    time = VirtualTime()
    write = FlakyWrite(time, locked(), failures=1000, cost=5.0)  # busy_timeout each time
    with pytest.raises(StoreStillUnavailable) as raised:
        await retry(time, limit=12.0).run("storing message 1 in chat 42", write)
    assert raised.value.problem.reason is Unavailability.LOCKED
    assert raised.value.waited >= 12.0
    assert time.now < 12.0 + 5.0 + 1.0, "no attempt starts once the limit has passed"
    assert "send it again" in raised.value.user_message


async def test_a_failure_that_will_not_pass_is_raised_at_once() -> None:
    time = VirtualTime()
    write = FlakyWrite(time, sqlite3.IntegrityError("UNIQUE constraint failed"), failures=1)
    with pytest.raises(sqlite3.IntegrityError):
        await retry(time).run("storing message 1 in chat 42", write)
    assert write.calls == 1 and time.pauses == []


async def test_a_zero_limit_tries_once() -> None:
    time = VirtualTime()
    write = FlakyWrite(time, locked(), failures=1)
    with pytest.raises(StoreStillUnavailable):
        await retry(time, limit=0).run("storing message 1 in chat 42", write)
    assert write.calls == 1


async def test_an_outage_is_logged_once_per_reason_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time = VirtualTime()
    shared = retry(time, limit=3.0)
    caplog.set_level(logging.INFO, logger="bot.conversation.store_retry")
    full = StoreUnavailable(Unavailability.FULL, "database or disk is full")
    for message_id in (1, 2):
        with pytest.raises(StoreStillUnavailable) as raised:
            await shared.run(f"storing message {message_id}", FlakyWrite(time, full, 100))
        shared.refuse_turn(f"storing message {message_id}", raised.value)
    await shared.run("storing message 3", FlakyWrite(time, locked(), failures=2))
    await shared.run("storing message 4", FlakyWrite(time, locked(), failures=0))
    lines = [record.getMessage() for record in caplog.records]
    expected = [
        "the database's disk is full (SQLITE_FULL or disk_full)",
        "gave up storing message 1 after 3 s",
        "gave up storing message 2 after 3 s",
        "the database is locked by another writer (SQLITE_BUSY or a lock)",
        "the database works again after 6.3 s",  # from message 1's first try to message 3's
    ]
    assert len(lines) == len(expected)
    assert all(line.startswith(start) for line, start in zip(lines, expected, strict=True))
    assert lines[2].endswith("2 turns refused since start-up")
    assert lines[4].endswith("2 turns were refused meanwhile")
    assert shared.refused == 2
