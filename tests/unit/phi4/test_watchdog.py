"""The per-answer stall watchdog, and the event-loop lag monitor."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.loop_lag import LoopLagMonitor
from bot.phi4.watchdog import StallWatchdog


async def read(watchdog: StallWatchdog, data: asyncio.Queue[str]) -> str:
    watchdog.arm()
    try:
        return await data.get()
    finally:
        watchdog.armed = False


async def test_data_that_keeps_coming_never_trips_the_watchdog() -> None:
    data: asyncio.Queue[str] = asyncio.Queue()

    async def feed() -> None:
        for _ in range(12):
            await asyncio.sleep(0.02)
            data.put_nowait("x")

    feeder = asyncio.create_task(feed())
    async with StallWatchdog(0.1) as watchdog:
        for _ in range(12):  # 0.24 s in all: longer than the timeout, never silent that long
            await read(watchdog, data)
            watchdog.feed()
    await feeder
    assert not watchdog.expired


async def test_silence_longer_than_the_timeout_raises_timeout_error() -> None:
    data: asyncio.Queue[str] = asyncio.Queue()
    data.put_nowait("x")
    with pytest.raises(TimeoutError):
        async with StallWatchdog(0.05) as watchdog:
            await read(watchdog, data)
            watchdog.feed()
            await read(watchdog, data)  # nothing more comes


async def test_time_the_consumer_holds_the_stream_is_not_a_stall() -> None:
    data: asyncio.Queue[str] = asyncio.Queue()
    async with StallWatchdog(0.05) as watchdog:
        data.put_nowait("x")
        await read(watchdog, data)
        watchdog.feed()
        await asyncio.sleep(0.15)  # the consumer is busy, not reading: disarmed
        data.put_nowait("y")
        assert await read(watchdog, data) == "y"
    assert not watchdog.expired


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    data: asyncio.Queue[str] = asyncio.Queue()

    async def reader() -> None:
        async with StallWatchdog(10) as watchdog:
            await read(watchdog, data)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_the_lag_monitor_warns_once_per_period_and_summarises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = LoopLagMonitor()
    with caplog.at_level(logging.WARNING, logger="bot.loop_lag"):
        monitor.record(0.01, now=0.0)
        monitor.record(0.25, now=1.0)
        monitor.record(0.30, now=2.0)  # within the warning period: counted, not logged
        monitor.record(0.20, now=20.0)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "250 ms" in warnings[0]
    assert "2 late tick(s)" in warnings[1]
    assert monitor.worst == 0.30
    assert monitor.percentile(50) == 0.20


async def test_the_lag_monitor_logs_its_summary_when_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = LoopLagMonitor(period=0.01).start()
    await asyncio.sleep(0.05)
    with caplog.at_level(logging.INFO, logger="bot.loop_lag"):
        await monitor.stop()
    assert any("event loop lag: p50" in r.getMessage() for r in caplog.records)
