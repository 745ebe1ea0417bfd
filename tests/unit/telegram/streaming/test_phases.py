"""A reply's phases: the one table of moves, and the path a reply takes through it."""

from __future__ import annotations

import asyncio

import pytest

from bot.telegram.streaming.pacing import RateBudget
from bot.telegram.streaming.phases import ALLOWED, IllegalTransition, Phase, advance
from bot.telegram.streaming.sink import SinkError
from bot.telegram.streaming.streamer import ReplyOptions, ReplyStreamer
from tests.fake_clock import FakeClock
from tests.unit.telegram.streaming.test_streamer import MemorySink, fail_once

pytestmark = pytest.mark.virtual_time

ENDS = (Phase.FINISHED, Phase.BROKEN)


def test_every_phase_has_its_row_and_the_ends_lead_nowhere() -> None:
    assert set(ALLOWED) == set(Phase)
    assert all(not ALLOWED[end] for end in ENDS)
    assert all(Phase.BROKEN in ALLOWED[phase] for phase in Phase if phase not in ENDS)


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (Phase.STREAMING, Phase.STATUS),  # a queue position after the text started
        (Phase.FINISHING, Phase.STREAMING),  # text after the end was fixed
        (Phase.WAITING, Phase.FINISHED),  # finished without ever finishing
        (Phase.FINISHED, Phase.FINISHING),  # finished twice
        (Phase.BROKEN, Phase.STREAMING),  # sending again after Telegram refused for good
    ],
)
def test_a_move_the_table_does_not_list_raises(current: Phase, wanted: Phase) -> None:
    with pytest.raises(IllegalTransition):
        advance(current, wanted)


def reply(clock: FakeClock, sink: MemorySink) -> ReplyStreamer:
    options = ReplyOptions(chat_id=sink.chat_id, is_group=False, interval=1.0, reply_to=7)
    return ReplyStreamer(sink, RateBudget(clock=clock), options)


async def test_an_answer_goes_waiting_status_streaming_finishing_finished() -> None:
    clock = FakeClock()
    sink = MemorySink(clock)
    streamer = reply(clock, sink)
    seen = [streamer.phase]
    await clock.run(streamer.show_status("⏳ In queue: position 2"))
    seen.append(streamer.phase)
    streamer.append("Hello")
    seen.append(streamer.phase)
    await clock.run_for(0.5)
    finishing = asyncio.ensure_future(streamer.finish())
    await asyncio.sleep(0)  # the final state is fixed at once; sending it takes a while
    seen.append(streamer.phase)
    await clock.run(finishing)
    seen.append(streamer.phase)
    assert seen == [
        Phase.WAITING,
        Phase.STATUS,
        Phase.STREAMING,
        Phase.FINISHING,
        Phase.FINISHED,
    ]
    assert sink.texts() == ["Hello"]


async def test_a_refused_answer_stays_broken_when_it_is_finished() -> None:
    clock = FakeClock()
    sink = MemorySink(clock, script=fail_once("send", SinkError("chat not found")))
    streamer = reply(clock, sink)
    streamer.append("Hello")
    await clock.run_for(0.5)
    assert streamer.phase is Phase.BROKEN
    streamer.append(" more")  # still read, so the stored answer holds all of it
    assert await clock.run(streamer.finish()) == []
    assert streamer.phase is Phase.BROKEN
    assert streamer.text == "Hello more"
