"""RateBudget on a virtual clock: Telegram's flood limits are never exceeded, and slots go
first to the requests that matter most."""

from __future__ import annotations

import asyncio
import bisect
import itertools

import pytest

from bot.telegram.streaming.pacing import Priority, RateBudget
from tests.fake_clock import FakeClock
from tests.fakes.telegram.limits import FloodControl, Limits, ManualClock

pytestmark = pytest.mark.virtual_time


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def most_in_window(times: list[float], window: float) -> int:
    """The largest number of `times` inside any half-open window of `window` seconds."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0
    )


async def test_the_first_request_of_an_idle_chat_is_granted_at_once(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)
    start = clock.now()
    await clock.run(budget.acquire(1, is_group=False, priority=Priority.FIRST))
    assert clock.now() == start


async def test_the_bot_wide_rate_is_never_exceeded_in_any_second(clock: FakeClock) -> None:
    budget = RateBudget(bot_rate=30, clock=clock)
    grants: list[float] = []

    async def chat(chat_id: int) -> None:
        for _ in range(5):
            await budget.acquire(chat_id, is_group=False, priority=Priority.EDIT)
            budget.release()
            grants.append(clock.now())

    await clock.run(asyncio.gather(*(chat(n) for n in range(100))))
    assert len(grants) == 500
    assert most_in_window(grants, 1.0) <= 28, "two below Telegram's 30, for clock jitter"
    # And the budget is used, not wasted: intermediate edits may use 24 a second.
    assert grants[-1] - grants[0] < 500 / 24 * 1.05


async def test_a_burst_of_first_messages_leaves_at_once(clock: FakeClock) -> None:
    budget = RateBudget(bot_rate=30, clock=clock)
    start = clock.now()
    grants: list[float] = []

    async def first(chat_id: int) -> None:
        await budget.acquire(chat_id, is_group=False, priority=Priority.FIRST)
        budget.release()
        grants.append(clock.now() - start)

    await clock.run(asyncio.gather(*(first(n) for n in range(40))))
    assert sorted(grants)[27] < 0.01, "28 go at once"
    assert min(g for g in grants if g > 0.01) >= 1.0, "the rest wait for the window"


async def test_one_private_chat_gets_at_most_one_request_per_second(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)
    grants: list[float] = []

    async def requests() -> None:
        for _ in range(10):
            await budget.acquire(7, is_group=False, priority=Priority.FIRST)
            budget.release()
            grants.append(clock.now())

    await clock.run(requests())
    gaps = [b - a for a, b in itertools.pairwise(grants)]
    assert min(gaps) >= 1.0
    assert max(gaps) < 1.2


async def test_one_group_gets_at_most_twenty_requests_per_minute(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)
    grants: list[float] = []

    async def topic() -> None:
        for _ in range(20):
            await budget.acquire(-100, is_group=True, priority=Priority.EDIT)
            budget.release()
            grants.append(clock.now())

    await clock.run(asyncio.gather(topic(), topic()))  # two forum topics share the group
    assert most_in_window(grants, 60.0) <= 20
    assert min(b - a for a, b in itertools.pairwise(grants)) >= 3.0


async def test_first_messages_go_before_final_edits_before_intermediate_edits(
    clock: FakeClock,
) -> None:
    budget = RateBudget(bot_rate=1, clock=clock)  # one slot a second makes slots scarce
    await clock.run(budget.acquire(0, is_group=False, priority=Priority.EDIT))
    order: list[str] = []

    async def request(chat_id: int, priority: Priority) -> None:
        await budget.acquire(chat_id, is_group=False, priority=priority)
        budget.release()
        order.append(f"{priority.name}-{chat_id}")

    tasks = [
        asyncio.ensure_future(request(1, Priority.EDIT)),
        asyncio.ensure_future(request(2, Priority.FINAL)),
        asyncio.ensure_future(request(3, Priority.FIRST)),
        asyncio.ensure_future(request(4, Priority.EDIT)),
        asyncio.ensure_future(request(5, Priority.FIRST)),
    ]
    await clock.run(asyncio.gather(*tasks))
    assert order == ["FIRST-3", "FIRST-5", "FINAL-2", "EDIT-1", "EDIT-4"]


async def test_among_equals_the_chat_served_least_recently_goes_first(clock: FakeClock) -> None:
    budget = RateBudget(bot_rate=1, clock=clock)
    for chat_id in (1, 2, 3):  # served in this order: 1 longest ago
        await clock.run(budget.acquire(chat_id, is_group=False, priority=Priority.EDIT))
    order: list[int] = []

    async def request(chat_id: int) -> None:
        await budget.acquire(chat_id, is_group=False, priority=Priority.EDIT)
        budget.release()
        order.append(chat_id)

    await clock.run(asyncio.gather(request(3), request(2), request(9), request(1)))
    assert order == [9, 1, 2, 3]


async def test_a_busy_chat_does_not_hold_up_other_chats(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)
    await clock.run(budget.acquire(1, is_group=False, priority=Priority.EDIT))
    start = clock.now()
    waiting = asyncio.ensure_future(budget.acquire(1, is_group=False, priority=Priority.FIRST))
    await clock.run(budget.acquire(2, is_group=False, priority=Priority.EDIT))
    assert clock.now() - start < 0.1
    assert not waiting.done()
    await clock.run(waiting)
    assert clock.now() - start >= 1.0


async def test_two_hundred_streaming_chats_all_get_regular_updates(clock: FakeClock) -> None:
    chats, rate = 200, 30
    budget = RateBudget(bot_rate=rate, clock=clock)
    updates: dict[int, list[float]] = {n: [] for n in range(chats)}
    start = clock.now()

    async def stream(chat_id: int) -> None:
        await budget.acquire(chat_id, is_group=False, priority=Priority.FIRST)
        budget.release()
        updates[chat_id].append(clock.now())
        while clock.now() - start < 40:
            await budget.acquire(chat_id, is_group=False, priority=Priority.EDIT)
            budget.release()
            updates[chat_id].append(clock.now())

    await clock.run(asyncio.gather(*(stream(n) for n in range(chats))))
    bound = 1.5 * chats / rate + 1.0
    for times in updates.values():
        assert times[0] - start <= bound
        assert max(b - a for a, b in itertools.pairwise(times)) <= bound
    everything = [t for times in updates.values() for t in times]
    assert most_in_window(everything, 1.0) <= rate


async def test_a_new_answer_is_not_starved_by_two_hundred_streaming_chats(
    clock: FakeClock,
) -> None:
    budget = RateBudget(clock=clock)
    stop = clock.now() + 20

    async def stream(chat_id: int) -> None:
        while clock.now() < stop:
            await budget.acquire(chat_id, is_group=False, priority=Priority.EDIT)
            budget.release()

    streams = asyncio.gather(*(stream(n) for n in range(200)))
    await clock.run_for(5)
    asked = clock.now()
    await clock.run(budget.acquire(999, is_group=False, priority=Priority.FIRST))
    assert clock.now() - asked < 0.1
    await clock.run(streams)


async def test_penalize_blocks_the_chat_for_retry_after(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)
    await clock.run(budget.acquire(1, is_group=False, priority=Priority.EDIT))
    penalized = clock.now()
    budget.penalize(1, 12)
    await clock.run(budget.acquire(2, is_group=False, priority=Priority.EDIT))
    assert clock.now() - penalized < 0.1, "other chats go on"
    await clock.run(budget.acquire(1, is_group=False, priority=Priority.FINAL))
    assert clock.now() - penalized >= 12


async def test_429s_in_several_chats_block_the_whole_bot(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)
    for chat_id in (1, 2, 3):
        budget.penalize(chat_id, 5)
    start = clock.now()
    await clock.run(budget.acquire(4, is_group=False, priority=Priority.FIRST))
    assert clock.now() - start >= 5


async def test_one_429_blocks_the_bot_when_told_it_was_bot_wide(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)
    budget.penalize(1, 3, bot_wide=True)
    start = clock.now()
    await clock.run(budget.acquire(2, is_group=False, priority=Priority.FIRST))
    assert clock.now() - start >= 3


async def test_a_cancelled_wait_reserves_nothing(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)
    await clock.run(budget.acquire(1, is_group=False, priority=Priority.EDIT))
    waiting = asyncio.ensure_future(budget.acquire(1, is_group=False, priority=Priority.EDIT))
    await clock.settle()
    waiting.cancel()
    await clock.settle()
    assert waiting.cancelled()
    # The chat's next request waits only for the spacing after the first one, once.
    start = clock.now()
    await clock.run(budget.acquire(1, is_group=False, priority=Priority.EDIT))
    assert clock.now() - start <= 1.05 + 1e-6
    await clock.run(budget.acquire(2, is_group=False, priority=Priority.EDIT))
    assert not budget._ready and not budget._blocked  # nothing left behind


async def test_a_slot_granted_to_a_cancelled_wait_is_handed_back(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)
    await clock.run(budget.acquire(1, is_group=False, priority=Priority.EDIT))
    waiting = asyncio.ensure_future(budget.acquire(1, is_group=False, priority=Priority.FIRST))
    await clock.settle()
    clock._now += 2.0
    budget._dispatch()  # the slot is granted here...
    waiting.cancel()  # ...and the wait cancelled before it could use it
    with pytest.raises(asyncio.CancelledError):
        await waiting
    start = clock.now()
    await clock.run(budget.acquire(1, is_group=False, priority=Priority.FIRST))
    assert clock.now() == start, "the chat is not held by the unused slot"


async def test_no_timer_is_left_running_once_everyone_is_served(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)
    await clock.run(
        asyncio.gather(
            *(budget.acquire(n, is_group=False, priority=Priority.EDIT) for n in range(5))
        )
    )
    await clock.settle()
    assert budget._timer is None or budget._timer.done()


async def test_slow_requests_hold_the_window_until_a_second_after_their_answer(
    clock: FakeClock,
) -> None:
    budget = RateBudget(bot_rate=30, clock=clock)
    start = clock.now()
    for chat_id in range(28):
        await clock.run(budget.acquire(chat_id, is_group=False, priority=Priority.FIRST))
    late = asyncio.ensure_future(budget.acquire(99, is_group=False, priority=Priority.FIRST))
    await clock.run_for(5)
    assert not late.done(), "28 requests still on their way hold the whole budget"
    for _ in range(28):
        budget.release()
    released = clock.now()
    await clock.run(late)
    assert clock.now() - released >= 1.0 - 1e-6
    assert clock.now() - start < 6.1


async def test_three_live_processes_each_keep_a_third_of_the_bot_wide_rate(
    clock: FakeClock,
) -> None:
    budget = RateBudget(bot_rate=30, clock=clock)
    budget.share(3)
    grants: list[float] = []

    async def chat(chat_id: int) -> None:
        for _ in range(3):
            await budget.acquire(chat_id, is_group=False, priority=Priority.FIRST)
            budget.release()
            grants.append(clock.now())

    await clock.run(asyncio.gather(*(chat(n) for n in range(30))))
    assert len(grants) == 90
    assert most_in_window(grants, 1.0) == 9, "three such processes stay under Telegram's 30"
    budget.share(1)
    assert budget.window_cap == 28


# -- slots: what the rate limiter lets through ----------------------------------------------


async def test_a_slot_lets_exactly_one_request_to_its_chat_through(clock: FakeClock) -> None:
    budget, other = RateBudget(clock=clock), RateBudget(clock=clock)
    assert not budget.claim(7), "no slot held outside a block"

    async def inside() -> list[bool]:
        async with budget.slot(7, is_group=False, priority=Priority.FIRST):
            return [other.claim(7), budget.claim(8), budget.claim(7), budget.claim(7)]

    assert await clock.run(inside()) == [False, False, True, False]
    assert not budget.claim(7)
    assert budget.window_used() == 1, "released on leaving the block, still in the window"

    async def guest_edit() -> bool:  # an inline message's edit names no chat
        async with budget.slot(-7, is_group=True, priority=Priority.FINAL):
            return budget.claim(None)

    assert await clock.run(guest_edit()), "a chat's slot covers a request charged to the bot"


async def test_a_slot_is_released_when_its_block_fails(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)

    async def failing() -> None:
        async with budget.slot(7, is_group=False, priority=Priority.FIRST):
            raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await clock.run(failing())
    start = clock.now()
    await clock.run(budget.acquire(8, is_group=False, priority=Priority.FIRST))
    assert clock.now() == start, "nothing stays held"


async def test_requests_without_a_chat_share_only_the_bot_wide_budget(clock: FakeClock) -> None:
    budget = RateBudget(bot_rate=30, clock=clock)
    grants: list[float] = []

    async def answer() -> None:
        async with budget.slot(None, is_group=False, priority=Priority.FIRST):
            assert budget.claim(None)
        grants.append(clock.now())

    await clock.run(asyncio.gather(*(answer() for _ in range(40))))
    assert sorted(grants)[27] == grants[0], "no per-chat spacing: 28 at once"
    assert most_in_window(grants, 1.0) <= 28
    budget.penalize(None, 5)
    start = clock.now()
    await clock.run(budget.acquire(9, is_group=False, priority=Priority.FIRST))
    assert clock.now() >= start + 5, "a 429 without a chat is bot-wide"


async def test_a_slot_if_free_never_waits_and_never_delays_others(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)
    start = clock.now()
    with budget.slot_if_free(7, is_group=False) as typing:
        assert typing and budget.claim(7)
    with budget.slot_if_free(7, is_group=False) as again:
        assert not again, "one slot ahead of the spacing at most"
    assert not budget.claim(7)
    grants = []
    for _ in range(3):
        await clock.run(budget.acquire(7, is_group=False, priority=Priority.FIRST))
        budget.release()
        grants.append(clock.now() - start)
    assert grants == pytest.approx([0, 2.1, 3.15]), "the next request at once, then paid back"
    for n in range(28):  # first messages hold the whole bot-wide window of this second
        await clock.run(budget.acquire(100 + n, is_group=False, priority=Priority.FIRST))
    with budget.slot_if_free(9, is_group=False) as typing:
        assert not typing, "no room left in this second"
    for _ in range(28):
        budget.release()
    await clock.run_for(1.0)
    with budget.slot_if_free(9, is_group=False) as typing:
        assert typing, "room again a second later"


@pytest.mark.parametrize("chat_id", [7, -7])
async def test_typing_before_each_answer_stays_within_telegrams_limits(
    clock: FakeClock, chat_id: int
) -> None:
    budget = RateBudget(clock=clock)
    sent: list[float] = []

    async def answers() -> None:
        for turn in range(12):
            with budget.slot_if_free(chat_id, is_group=chat_id < 0) as typing:
                if typing:
                    sent.append(clock.now())
            await clock.sleep(0.1 * (turn % 4))  # the model's first chunk
            for _ in range(turn % 5 + 1):
                await budget.acquire(chat_id, is_group=chat_id < 0, priority=Priority.FIRST)
                budget.release()
                sent.append(clock.now())

    await clock.run(answers())
    telegram = ManualClock()
    flood = FloodControl(Limits(), telegram)
    for at in sent:
        telegram.now = at
        assert flood.admit(chat_id, chat_id > 0) is None, f"refused at {at - sent[0]:.2f} s"
