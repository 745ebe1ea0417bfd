"""The virtual clock moves only when every task waits, however long their chains of wake-ups."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.fake_clock import FakeClock

pytestmark = pytest.mark.virtual_time


async def test_time_stands_still_while_any_task_can_run() -> None:
    clock = FakeClock()
    seen: list[float] = []

    async def relay(inbox: asyncio.Queue[int], outbox: asyncio.Queue[int]) -> None:
        outbox.put_nowait(await inbox.get() + 1)

    queues: list[asyncio.Queue[int]] = [asyncio.Queue() for _ in range(501)]
    relays = [asyncio.create_task(relay(a, b)) for a, b in itertools.pairwise(queues)]

    async def sleeper() -> None:
        await clock.sleep(5)
        seen.append(clock.now())

    async def scenario() -> int:
        asleep = asyncio.create_task(sleeper())
        queues[0].put_nowait(0)
        hops = await queues[-1].get()  # 500 tasks woke one another meanwhile
        seen.append(clock.now())
        await asleep
        return hops

    assert await clock.run(scenario()) == 500
    assert seen == [1000.0, 1005.0]
    await asyncio.gather(*relays)


async def test_sleepers_wake_in_deadline_order_and_a_deadlock_is_reported() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    await clock.run(asyncio.gather(nap("late", 3), nap("early", 1), nap("same", 1)))
    assert woke == [("early", 1001.0), ("same", 1001.0), ("late", 1003.0)]
    with pytest.raises(RuntimeError, match="deadlock"):
        await clock.run(asyncio.Event().wait())


def test_it_refuses_an_event_loop_it_cannot_watch() -> None:
    with pytest.raises(RuntimeError, match="virtual_time"):
        asyncio.run(FakeClock().settle())
