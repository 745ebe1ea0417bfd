"""The background-work owner: names, one log line per failure, and one drain deadline."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.shared.tasks import TaskSupervisor


async def test_a_failure_is_logged_once_with_the_task_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = TaskSupervisor()

    async def broken() -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="bot.shared.tasks"):
        task = tasks.spawn(broken(), name="notice-42")
        await asyncio.wait([task])
        await asyncio.sleep(0)  # the done callback runs
    failures = [r for r in caplog.records if "notice-42" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None and failures[0].exc_info[0] is ValueError
    assert len(tasks) == 0


async def test_drain_waits_for_work_spawned_meanwhile() -> None:
    tasks = TaskSupervisor()
    done: list[str] = []

    async def second() -> None:
        await asyncio.sleep(0.05)
        done.append("second")

    async def first() -> None:
        await asyncio.sleep(0.05)
        tasks.spawn(second(), name="second")
        done.append("first")

    tasks.spawn(first(), name="first")
    loop = asyncio.get_running_loop()
    cancelled = await tasks.drain(loop.time() + 5.0)
    assert done == ["first", "second"]
    assert cancelled == 0
    assert len(tasks) == 0


async def test_drain_cancels_what_outlives_the_deadline_and_reports_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = TaskSupervisor()
    slow = tasks.spawn(asyncio.sleep(30), name="slow-notice")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.WARNING, logger="bot.shared.tasks"):
        cancelled = await tasks.drain(started + 0.2)
    assert cancelled == 1
    assert slow.cancelled()
    assert loop.time() - started < 1.0
    assert any("slow-notice" in r.getMessage() for r in caplog.records)


async def test_tasks_marked_cancel_at_shutdown_do_not_hold_the_drain() -> None:
    tasks = TaskSupervisor()
    probe = tasks.spawn(asyncio.sleep(30), name="probe", cancel_at_shutdown=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    cancelled = await tasks.drain(started + 10.0)
    assert probe.cancelled()
    assert cancelled == 0
    assert loop.time() - started < 1.0
