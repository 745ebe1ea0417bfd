"""BudgetRateLimiter: every request a real python-telegram-bot client sends passes the budget."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from telegram.error import RetryAfter
from telegram.ext import ExtBot

from bot.telegram.streaming.limiter import BudgetRateLimiter, chat_of, priority_of
from bot.telegram.streaming.pacing import Priority, RateBudget
from tests.fakes.telegram import FakeTelegram

TOKEN = "123:ABC"
INTERVAL = 0.2  # a private chat's spacing, short to keep the tests fast
# PTB 22 warns that RetryAfter.retry_after will become a timedelta.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class CountingBudget(RateBudget):
    """A RateBudget that counts the slots it was asked for, when each chat's were granted,
    and the 429s it was told of."""

    def __init__(self) -> None:
        super().__init__(private_interval=INTERVAL, group_interval=INTERVAL)
        self.acquired: list[int | None] = []
        self.grant_times: dict[int | None, list[float]] = {}
        self.penalized: list[int | None] = []

    async def acquire(self, chat_id: int | None, *, is_group: bool, priority: Priority) -> None:
        self.acquired.append(chat_id)
        await super().acquire(chat_id, is_group=is_group, priority=priority)
        self.grant_times.setdefault(chat_id, []).append(time.monotonic())

    def penalize(
        self, chat_id: int | None, retry_after: float, *, bot_wide: bool | None = None
    ) -> None:
        self.penalized.append(chat_id)
        super().penalize(chat_id, retry_after, bot_wide=bot_wide)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN) as fake:
        fake.private_user(42, "Alice")
        fake.private_user(43, "Bob")
        yield fake


@pytest.fixture
def budget() -> CountingBudget:
    return CountingBudget()


@pytest.fixture
async def bot(tg: FakeTelegram, budget: CountingBudget) -> AsyncIterator[ExtBot[None]]:
    ptb = ExtBot(
        TOKEN,
        base_url=f"{tg.url}/bot",
        base_file_url=f"{tg.url}/file/bot",
        rate_limiter=BudgetRateLimiter(budget),
    )
    async with ptb:
        budget.acquired.clear()  # getMe, on the way in
        yield ptb


def test_requests_are_charged_to_their_chat_or_to_the_bot_alone() -> None:
    assert chat_of("sendMessage", {"chat_id": 42, "text": "hi"}) == 42
    assert chat_of("editMessageText", {"chat_id": -100, "message_id": 1}) == -100
    assert chat_of("sendChatAction", {"chat_id": 42, "action": "typing"}) == 42
    assert chat_of("editMessageText", {"inline_message_id": "AbC"}) is None
    assert chat_of("getChatMember", {"chat_id": -100, "user_id": 5}) is None
    assert chat_of("answerCallbackQuery", {"callback_query_id": "1"}) is None
    assert [priority_of(m) for m in ("sendMessage", "editMessageText", "sendChatAction")] == [
        Priority.FIRST,
        Priority.FINAL,
        Priority.EDIT,
    ]


async def test_requests_nobody_paced_wait_for_their_own_slot(
    tg: FakeTelegram, bot: ExtBot[None], budget: CountingBudget
) -> None:
    await asyncio.gather(*(bot.send_message(42, str(n)) for n in range(3)), bot.get_me())
    assert len(tg.stats.chat_requests[42]) == 3
    # The grants, not the arrivals: on a busy machine a request can be slow to arrive and
    # the next one quick, which says nothing about the pacing.
    grants = budget.grant_times[42]
    assert min(b - a for a, b in itertools.pairwise(grants)) >= INTERVAL * 0.99
    assert sorted(budget.acquired, key=str) == [42, 42, 42, None]


async def test_a_request_in_a_held_slot_is_not_paced_twice(
    tg: FakeTelegram, bot: ExtBot[None], budget: CountingBudget
) -> None:
    async with budget.slot(42, is_group=False, priority=Priority.FIRST):
        await bot.send_message(42, "in its slot")
        await bot.send_message(42, "a second request needs a slot of its own")
    assert budget.acquired == [42, 42]
    first, second = budget.grant_times[42]
    assert second - first >= INTERVAL * 0.99
    async with budget.slot(42, is_group=False, priority=Priority.FIRST):
        await bot.send_message(43, "another chat's request is paced for that chat")
    assert budget.acquired[-1] == 43


async def test_a_429_penalises_the_chat_and_the_request_goes_again_after_it(
    tg: FakeTelegram, bot: ExtBot[None], budget: CountingBudget
) -> None:
    tg.fail_next(1, 429, method="sendMessage", retry_after=1)
    started = time.monotonic()
    sent = await bot.send_message(42, "patient")
    assert time.monotonic() - started >= 1.0
    assert [m.text for m in tg.messages(42)] == ["patient"] and sent.text == "patient"
    assert tg.stats.flood_429 == 0, "the penalty was waited out, not hammered"
    tg.fail_next(1, 429, method="sendChatAction", retry_after=1)
    with pytest.raises(RetryAfter):  # stale by the time it could go again
        await bot.send_chat_action(43, "typing")
    assert tg.stats.requests["sendChatAction"] == 1


async def test_a_429_in_a_held_slot_penalises_its_chat_once(
    tg: FakeTelegram, bot: ExtBot[None], budget: CountingBudget
) -> None:
    tg.fail_next(1, 429, method="sendMessage", retry_after=1)
    async with budget.slot(42, is_group=False, priority=Priority.FIRST):
        with pytest.raises(RetryAfter):  # the holder decides what to do next
            await bot.send_message(42, "in its slot")
    assert budget.penalized == [42]


async def test_a_429_on_a_guest_message_holds_the_bot_and_the_chat_it_shows_in(
    budget: CountingBudget,
) -> None:
    async def refused(*args: Any, **kwargs: Any) -> bool:
        raise RetryAfter(1)

    limiter = BudgetRateLimiter(budget)
    async with budget.slot(-100, is_group=True, priority=Priority.FINAL):
        with pytest.raises(RetryAfter):
            await limiter.process_request(
                refused, (), {}, "editMessageText", {"inline_message_id": "AbC"}, None
            )
    assert (budget.penalized, budget.acquired) == ([None, -100], [-100])
    assert budget.penalty_remaining() > 0
