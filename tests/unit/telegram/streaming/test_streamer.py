"""ReplyStreamer against an in-memory chat on a virtual clock: paced updates, and a final
state that is exactly the rendered answer whatever Telegram answers on the way."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import MessageEntity

import bot.telegram.streaming.streamer as streamer_module
from bot.telegram.streaming.buttons import Button, Keyboard
from bot.telegram.streaming.pacing import Priority, RateBudget
from bot.telegram.streaming.render import (
    RenderedText,
    italic,
    join,
    plain,
    render_markdown,
    split_for_telegram,
)
from bot.telegram.streaming.sink import (
    EntitiesRejected,
    FloodWait,
    MessageGone,
    NotModified,
    SinkError,
    TransientSendError,
)
from bot.telegram.streaming.streamer import EMPTY_ANSWER, ReplyOptions, ReplyStreamer
from tests.fake_clock import FakeClock, run_virtual
from tests.fakes.telegram.limits import FloodControl, Limits

pytestmark = pytest.mark.virtual_time

CHAT = 42
LATENCY = 0.05


@dataclass
class Request:
    time: float
    kind: str
    message_id: int | None
    content: RenderedText
    reply_to: int | None = None


@dataclass
class MemorySink:
    """A chat held in memory that answers like Telegram, with scripted refusals.

    `script(kind, content)` may return an exception to raise for that request (after it is
    recorded); `flood` applies Telegram's flood limits and answers 429 beyond them. A 429
    penalises `budget` as the rate limiter every request passes in the bot does
    (`limiter.BudgetRateLimiter`).
    """

    clock: FakeClock
    chat_id: int = CHAT
    flood: FloodControl | None = None
    script: Callable[[str, RenderedText], Exception | None] | None = None
    messages: dict[int, RenderedText] = field(default_factory=dict)
    buttons: dict[int, Keyboard] = field(default_factory=dict)
    drafts: list[RenderedText] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    refused_429: int = 0
    not_modified: int = 0
    next_id: int = 100
    budget: RateBudget | None = None

    async def send(
        self,
        text: str,
        entities: Sequence[MessageEntity],
        *,
        reply_to: int | None,
        buttons: Keyboard = (),
    ) -> int:
        content = await self._request("send", None, text, entities, reply_to)
        self.next_id += 1
        self.messages[self.next_id] = content
        self.buttons[self.next_id] = buttons
        return self.next_id

    async def edit(
        self,
        message_id: int,
        text: str,
        entities: Sequence[MessageEntity],
        *,
        buttons: Keyboard = (),
    ) -> None:
        content = await self._request("edit", message_id, text, entities)
        if message_id not in self.messages:
            raise MessageGone("message to edit not found")
        if self.messages[message_id] == content and self.buttons.get(message_id) == buttons:
            self.not_modified += 1
            raise NotModified("message is not modified")
        self.messages[message_id] = content
        self.buttons[message_id] = buttons

    async def draft(self, draft_id: int, text: str, entities: Sequence[MessageEntity]) -> None:
        assert draft_id != 0
        self.drafts.append(await self._request("draft", None, text, entities))

    async def delete(self, message_id: int) -> None:
        await self._request("delete", message_id, "", ())
        if self.messages.pop(message_id, None) is None:
            raise MessageGone("message to delete not found")

    async def _request(
        self,
        kind: str,
        message_id: int | None,
        text: str,
        entities: Sequence[MessageEntity],
        reply_to: int | None = None,
    ) -> RenderedText:
        await self.clock.sleep(LATENCY)
        content = RenderedText(text, tuple(entities))
        self.requests.append(Request(self.clock.now(), kind, message_id, content, reply_to))
        try:
            if self.flood is not None:
                retry_after = self.flood.admit(self.chat_id, self.chat_id > 0)
                if retry_after is not None:
                    self.refused_429 += 1
                    raise FloodWait(retry_after)
            error = self.script(kind, content) if self.script else None
            if error is not None:
                raise error
        except FloodWait as exc:
            if self.budget is not None:
                self.budget.penalize(self.chat_id, exc.retry_after)
            raise
        return content

    def texts(self) -> list[str]:
        return [self.messages[mid].text for mid in sorted(self.messages)]

    def contents(self) -> list[RenderedText]:
        return [self.messages[mid] for mid in sorted(self.messages)]


def fail_once(kind: str, error: Exception, *, after: int = 0) -> Callable[..., Exception | None]:
    """A script refusing the (after+1)-th request of `kind` once with `error`."""
    seen = {"n": 0, "done": False}

    def script(request_kind: str, content: RenderedText) -> Exception | None:
        if request_kind != kind or seen["done"]:
            return None
        seen["n"] += 1
        if seen["n"] > after:
            seen["done"] = True
            return error
        return None

    return script


class SpyBudget(RateBudget):
    """A RateBudget that remembers the priority of every slot it was asked for."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.asked: list[Priority] = []

    async def acquire(self, chat_id: int | None, *, is_group: bool, priority: Priority) -> None:
        self.asked.append(priority)
        await super().acquire(chat_id, is_group=is_group, priority=priority)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def budget(clock: FakeClock) -> SpyBudget:
    return SpyBudget(clock)


@pytest.fixture
def sink(clock: FakeClock) -> MemorySink:
    return MemorySink(clock)


def make(
    sink: MemorySink,
    budget: RateBudget,
    *,
    on_finished: Callable[[list[int]], None] | None = None,
    **options: Any,
) -> ReplyStreamer:
    settings: dict[str, Any] = {
        "chat_id": sink.chat_id,
        "is_group": sink.chat_id < 0,
        "interval": 1.0,
        "reply_to": 7,
    }
    settings.update(options)
    sink.budget = budget  # its 429s reach the budget, as through the rate limiter
    return ReplyStreamer(sink, budget, ReplyOptions(**settings), on_finished=on_finished)


async def feed(clock: FakeClock, streamer: ReplyStreamer, chunks: list[str], every: float) -> None:
    for chunk in chunks:
        streamer.append(chunk)
        await clock.sleep(every)


def pieces_of(markdown: str, note: RenderedText | None = None) -> list[RenderedText]:
    rendered = render_markdown(markdown)
    return split_for_telegram(join(rendered, note) if note else rendered)


def words(count: int) -> list[str]:
    return [f"word{n} " for n in range(count)]


# -- the first text, pacing and coalescing ----------------------------------------------


async def test_the_first_text_appears_as_soon_as_the_first_chunk_arrives(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget)
    start = clock.now()
    streamer.append("Hel")
    await clock.run_for(0.5)
    assert [r.kind for r in sink.requests] == ["send"]
    assert sink.requests[0].time - start == pytest.approx(LATENCY)
    assert sink.texts() == ["Hel"]
    assert sink.requests[0].reply_to == 7
    assert budget.asked == [Priority.FIRST]
    await clock.run(streamer.finish())


async def test_edits_come_at_most_once_per_interval_and_carry_everything_so_far(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget, interval=2.0)
    chunks = words(100)
    await clock.run(feed(clock, streamer, chunks, every=0.1))  # 10 s of streaming
    ids = await clock.run(streamer.finish())
    times = [r.time for r in sink.requests]
    assert min(b - a for a, b in itertools.pairwise(times)) >= 2.0 - 1e-9
    assert 4 <= len(sink.requests) <= 7
    full = "".join(chunks)
    for request in sink.requests:
        assert full.startswith(request.content.text)
    assert sink.texts() == [render_markdown(full).text]
    assert ids == [101]
    assert Priority.EDIT in budget.asked


async def test_no_edit_repeats_what_the_message_already_shows(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget)
    streamer.append("Hello")
    await clock.run_for(2)
    for chunk in [" ", "\n\n", "  "]:  # trailing whitespace changes nothing visible
        streamer.append(chunk)
        await clock.run_for(2)
    await clock.run(streamer.finish())
    assert [r.kind for r in sink.requests] == ["send"]
    assert sink.not_modified == 0


async def test_not_modified_is_harmless(clock: FakeClock, budget: SpyBudget) -> None:
    sink = MemorySink(clock, script=fail_once("edit", NotModified("message is not modified")))
    streamer = make(sink, budget)
    streamer.append("one")
    await clock.run_for(1.5)
    streamer.append(" two")
    await clock.run_for(1.5)
    streamer.append(" three")
    await clock.run(streamer.finish())
    assert sink.texts() == ["one two three"]


async def test_a_flood_wait_pauses_then_sends_the_latest_text_once(
    clock: FakeClock, budget: SpyBudget
) -> None:
    sink = MemorySink(clock, script=fail_once("edit", FloodWait(5)))
    streamer = make(sink, budget)
    chunks = words(80)
    await clock.run(feed(clock, streamer, chunks, every=0.1))
    await clock.run(streamer.finish())
    refused = next(i for i, r in enumerate(sink.requests) if r.kind == "edit")
    after = sink.requests[refused + 1]
    assert after.time - sink.requests[refused].time >= 5
    # Chunks that came during the pause were coalesced into one edit with the latest text.
    fed_by_then = int((after.time - LATENCY - sink.requests[0].time) / 0.1) + 1
    assert len(after.content.text.split()) >= min(80, fed_by_then - 2)
    assert sink.texts() == [render_markdown("".join(chunks)).text]


# -- the final state -------------------------------------------------------------------


async def test_a_flood_wait_on_the_final_edit_is_waited_out_and_the_edit_sent(
    clock: FakeClock, budget: SpyBudget
) -> None:
    final = render_markdown("**done** at last")

    def script(kind: str, content: RenderedText) -> Exception | None:
        if kind == "edit" and content == final and not hasattr(script, "hit"):
            script.hit = True  # type: ignore[attr-defined]
            return FloodWait(30)
        return None

    sink = MemorySink(clock, script=script)
    streamer = make(sink, budget)
    streamer.append("**done**")
    await clock.run_for(2)
    streamer.append(" at last")
    finished_at = clock.now()
    await clock.run(streamer.finish())
    assert sink.contents() == [final]
    assert sink.requests[-1].time - finished_at >= 30
    assert budget.asked[-1] == Priority.FINAL


async def test_finishing_drops_a_pending_intermediate_edit_for_the_final_one(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget, interval=10.0)
    streamer.append("one")
    await clock.run_for(1)
    streamer.append(" two")  # an intermediate edit now waits for the interval
    await clock.run_for(1)
    streamer.append(" three")
    await clock.run(streamer.finish())
    assert [(r.kind, r.content.text) for r in sink.requests] == [
        ("send", "one"),
        ("edit", "one two three"),
    ]
    assert budget.asked == [Priority.FIRST, Priority.FINAL]


async def test_a_9kb_answer_ends_as_three_messages_whose_joined_text_is_the_answer(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    paragraphs = [f"Paragraph {n}: " + "lorem ipsum " * 62 for n in range(12)]
    answer = "\n\n".join(p.strip() for p in paragraphs)
    assert 9000 < len(answer) < 9500
    chunks = [answer[i : i + 40] for i in range(0, len(answer), 40)]
    streamer = make(sink, budget)
    await clock.run(feed(clock, streamer, chunks, every=0.02))
    ids = await clock.run(streamer.finish())
    assert len(ids) == 3
    texts = sink.texts()
    assert "\n\n".join(texts) == answer
    assert all(len(t.encode("utf-16-le")) // 2 <= 4096 for t in texts)
    assert [r.reply_to for r in sink.requests if r.kind == "send"] == [7, None, None]
    assert [sink.messages[i] for i in ids] == pieces_of(answer)


async def test_a_failed_continuation_message_is_retried_not_swallowed(
    clock: FakeClock, budget: SpyBudget
) -> None:
    sink = MemorySink(clock, script=fail_once("send", TransientSendError("timed out"), after=1))
    answer = "\n\n".join(f"Part {n}. " + "x" * 1500 for n in range(6))
    streamer = make(sink, budget)
    await clock.run(feed(clock, streamer, [answer[i : i + 300] for i in range(0, 9200, 300)], 0.1))
    await clock.run(streamer.finish())
    assert "\n\n".join(sink.texts()) == answer
    assert len(sink.messages) == 3
    sends = [r for r in sink.requests if r.kind == "send"]
    assert len(sends) == 4  # three messages, one of them sent twice


async def test_a_refused_final_edit_is_retried_until_the_text_is_right(
    clock: FakeClock, budget: SpyBudget
) -> None:
    sink = MemorySink(clock, script=fail_once("edit", TransientSendError("bad gateway"), after=1))
    streamer = make(sink, budget)
    await clock.run(feed(clock, streamer, words(30), every=0.1))
    await clock.run(streamer.finish())
    assert sink.texts() == [render_markdown("".join(words(30))).text]


async def test_transient_errors_are_retried_with_growing_pauses(
    clock: FakeClock, budget: SpyBudget
) -> None:
    failures = iter([True, True, True])

    def script(kind: str, content: RenderedText) -> Exception | None:
        return TransientSendError("timed out") if next(failures, False) else None

    sink = MemorySink(clock, script=script)
    streamer = make(sink, budget)
    streamer.append("hello")
    await clock.run(streamer.finish())
    times = [r.time for r in sink.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 4
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0 and gaps[2] >= 2.0
    assert sink.texts() == ["hello"]


async def test_the_final_state_gives_up_after_bounded_failures(
    clock: FakeClock, budget: SpyBudget, caplog: pytest.LogCaptureFixture
) -> None:
    sink = MemorySink(clock, script=lambda kind, content: TransientSendError("down"))
    streamer = make(sink, budget)
    streamer.append("hello")
    with caplog.at_level(logging.ERROR):
        ids = await clock.run(streamer.finish(), max_seconds=120)
    assert ids == []
    assert len(sink.requests) == streamer_module.FINAL_ATTEMPTS
    assert "giving up" in caplog.text


async def test_rejected_entities_fall_back_to_plain_text(
    clock: FakeClock, budget: SpyBudget
) -> None:
    def script(kind: str, content: RenderedText) -> Exception | None:
        return EntitiesRejected("can't parse entities") if content.entities else None

    sink = MemorySink(clock, script=script)
    streamer = make(sink, budget)
    await clock.run(feed(clock, streamer, ["Some **bold", "** and *italic*"], every=1.5))
    await clock.run(streamer.finish())
    assert sink.contents() == [plain("Some bold and italic")]


async def test_a_message_deleted_meanwhile_is_sent_again(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget)
    streamer.append("first part")
    await clock.run_for(1.5)
    sink.messages.clear()  # the user deleted the reply
    streamer.append(", second part")
    ids = await clock.run(streamer.finish())
    assert sink.texts() == ["first part, second part"]
    assert ids == list(sink.messages)


async def test_an_edit_refused_for_good_continues_in_a_new_message_and_the_old_one_goes(
    clock: FakeClock, budget: SpyBudget
) -> None:
    sink = MemorySink(clock, script=fail_once("edit", SinkError("message can't be edited")))
    streamer = make(sink, budget)
    streamer.append("first")
    await clock.run_for(1.5)
    streamer.append(" and more")
    ids = await clock.run(streamer.finish())
    assert sink.messages[ids[0]].text == "first and more"
    assert list(sink.messages) == ids, "the stale message was deleted"
    assert [r.kind for r in sink.requests] == ["send", "edit", "send", "delete"]


async def test_a_message_no_longer_needed_at_the_end_is_deleted(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    # A link with a title shows literally until its title closes, and spills into a second
    # message meanwhile; closing it shortens the rendering back into one.
    start = "a " * 2000 + "\n\n[x](http://example.org/" + "y" * 200 + ' "t'
    streamer = make(sink, budget)
    streamer.append(start)
    await clock.run_for(5)
    assert len(sink.messages) == 2
    streamer.append('")')
    ids = await clock.run(streamer.finish())
    assert len(ids) == 1
    assert sink.contents() == pieces_of(start + '")')


async def test_an_empty_answer_says_so(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget)
    streamer.append("   ")
    await clock.run(streamer.finish())
    assert sink.contents() == [italic(EMPTY_ANSWER)]


# -- status, notes and failures -----------------------------------------------------------


async def test_the_queue_status_becomes_the_first_message_and_then_the_answer(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget)
    await clock.run(streamer.show_status("⏳ In queue: position 3"))
    await clock.run(streamer.show_status("⏳ In queue: position 2"))
    assert sink.texts() == ["⏳ In queue: position 2"]
    streamer.append("The answer")
    await clock.run_for(1.5)
    assert sink.texts() == ["The answer"]
    assert budget.asked == [Priority.FIRST, Priority.EDIT, Priority.FIRST]
    await clock.run(streamer.finish())
    assert streamer.message_ids == [101]


async def test_the_moment_the_answer_was_first_shown_is_kept_and_a_status_does_not_count(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget)
    await clock.run(streamer.show_status("⏳ In queue: position 1"))
    assert streamer.answer_shown_at is None
    await clock.run_for(2.0)
    streamer.append("The answer")
    appended_at = clock.now()
    await clock.run_for(1.5)
    shown_at = streamer.answer_shown_at
    assert shown_at is not None and appended_at < shown_at < appended_at + 0.5
    streamer.append(" grows")
    await clock.run(streamer.finish())
    assert streamer.answer_shown_at == shown_at, "only the first sight counts"


async def test_a_cancelled_status_wait_still_leaves_a_consistent_reply(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget)
    waiting = asyncio.ensure_future(streamer.show_status("⏳ In queue: position 1"))
    await clock.settle()
    waiting.cancel()
    streamer.append("answer")
    await clock.run(streamer.finish())
    assert sink.texts() == ["answer"]


async def test_a_note_is_appended_in_italics_after_the_answer(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget)
    streamer.append("one two thre")
    await clock.run(streamer.finish(note="⏹ Stopped."))
    assert sink.contents() == [join(plain("one two thre"), italic("⏹ Stopped."))]


async def test_a_note_that_does_not_fit_goes_into_a_new_message(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    answer = "b" * 4090
    streamer = make(sink, budget)
    streamer.append(answer)
    await clock.run(streamer.finish(note="⏹ Stopped."))
    assert sink.contents() == [plain(answer), italic("⏹ Stopped.")]


async def test_a_failure_keeps_the_text_and_appends_the_error(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget)
    streamer.append("Partial *answer*")
    await clock.run_for(1)
    ids = await clock.run(streamer.fail("⚠️ The model stopped responding."))
    expected = join(render_markdown("Partial *answer*"), plain("⚠️ The model stopped responding."))
    assert [sink.messages[i] for i in ids] == [expected]
    assert streamer.text == "Partial *answer*"


async def test_a_failure_before_anything_was_shown_is_a_new_message(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget)
    ids = await clock.run(streamer.fail("The model is out of quota or overloaded."))
    assert [sink.messages[i].text for i in ids] == ["The model is out of quota or overloaded."]
    assert sink.requests[0].reply_to == 7


# -- drafts -----------------------------------------------------------------------------


async def test_draft_mode_streams_drafts_then_sends_the_final_message(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget, mode="draft", draft_id=5)
    chunks = words(40)
    await clock.run(feed(clock, streamer, chunks, every=0.1))
    assert sink.messages == {}
    assert len(sink.drafts) >= 3
    times = [r.time for r in sink.requests]
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1.0
    ids = await clock.run(streamer.finish())
    assert sink.texts() == [render_markdown("".join(chunks)).text]
    assert sink.requests[-1].kind == "send" and sink.requests[-1].reply_to == 7
    assert ids == [101]


async def test_a_long_draft_shows_its_tail_piece(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    answer = "\n\n".join(f"Part {n}. " + "y" * 1500 for n in range(4))
    streamer = make(sink, budget, mode="draft")
    streamer.append(answer)
    await clock.run_for(1)
    assert sink.drafts[-1] == pieces_of(answer)[-1]
    await clock.run(streamer.finish())
    assert "\n\n".join(sink.texts()) == answer


async def test_groups_never_get_drafts(clock: FakeClock, budget: SpyBudget) -> None:
    sink = MemorySink(clock, chat_id=-100)
    streamer = make(sink, budget, mode="draft", interval=3.0)
    streamer.append("group answer")
    await clock.run(streamer.finish())
    assert sink.drafts == [] and sink.texts() == ["group answer"]


async def test_refused_drafts_fall_back_to_editing(clock: FakeClock, budget: SpyBudget) -> None:
    sink = MemorySink(clock, script=fail_once("draft", SinkError("TEXTDRAFT_PEER_INVALID")))
    streamer = make(sink, budget, mode="draft")
    await clock.run(feed(clock, streamer, words(30), every=0.1))
    assert len(sink.messages) == 1
    await clock.run(streamer.finish())
    assert sink.texts() == [render_markdown("".join(words(30))).text]


# -- cost and scale ---------------------------------------------------------------------


async def test_rendering_happens_once_per_visible_update_not_per_chunk(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders = 0
    real = render_markdown

    def counting(md: str) -> RenderedText:
        nonlocal renders
        renders += 1
        return real(md)

    monkeypatch.setattr(streamer_module, "render_markdown", counting)
    streamer = make(sink, budget)
    await clock.run(feed(clock, streamer, ["ab"] * 1000, every=0.01))
    await clock.run(streamer.finish())
    assert renders <= len(sink.requests) + 1
    assert len(sink.requests) <= 12


async def test_two_hundred_chats_at_once_draw_no_429_and_all_end_exact(clock: FakeClock) -> None:
    budget = RateBudget(clock=clock)
    flood = FloodControl(Limits(), clock.now)
    chats = [MemorySink(clock, chat_id=1000 + n, flood=flood) for n in range(180)]
    chats += [MemorySink(clock, chat_id=-1000 - n, flood=flood) for n in range(20)]
    answers = {sink.chat_id: " ".join(f"w{sink.chat_id}-{i}" for i in range(60)) for sink in chats}

    async def answer(sink: MemorySink) -> None:
        streamer = make(sink, budget, interval=3.0 if sink.chat_id < 0 else 1.0)
        text = answers[sink.chat_id]
        await feed(clock, streamer, [text[i : i + 20] for i in range(0, len(text), 20)], 0.7)
        await streamer.finish()

    await clock.run(asyncio.gather(*(answer(sink) for sink in chats)))
    assert sum(sink.refused_429 for sink in chats) == 0
    for sink in chats:
        assert sink.texts() == [answers[sink.chat_id]]
        assert len(sink.requests) >= 2, "every chat saw the answer grow"


# -- the final state, whatever happens on the way ------------------------------------------

ANSWERS = [
    "Short **bold** answer with `code` and [a link](https://example.org).",
    "\n\n".join(f"Part {n}: *some* text " + "lorem ipsum " * 90 for n in range(8)),
    "```python\n" + "\n".join(f"line_{n} = {n}" for n in range(700)) + "\n```\n\nDone.",
]
TROUBLE = st.dictionaries(
    st.integers(min_value=0, max_value=30),
    st.sampled_from(["flood", "transient", "entities", "gone", "refused"]),
    max_size=10,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    answer=st.sampled_from(ANSWERS),
    parts=st.integers(min_value=1, max_value=60),
    every=st.sampled_from([0.0, 0.05, 0.3, 2.0]),
    trouble=TROUBLE,
    mode=st.sampled_from(["edit", "draft"]),
    note=st.sampled_from([None, "⏹ Stopped."]),
)
def test_the_final_state_is_exact_whatever_telegram_answers_on_the_way(
    answer: str, parts: int, every: float, trouble: dict[int, str], mode: str, note: str | None
) -> None:
    clock = FakeClock()
    chunk = -(-len(answer) // parts)
    count = {"n": 0}
    sink = MemorySink(clock)

    def script(kind: str, content: RenderedText) -> Exception | None:
        count["n"] += 1
        problem = trouble.get(count["n"] - 1)
        if problem == "flood":
            return FloodWait(1 + count["n"] % 7)
        if problem == "transient":
            return TransientSendError("timed out")
        if problem == "entities" and content.entities:
            return EntitiesRejected("can't parse entities")
        if problem == "gone" and kind == "edit":
            sink.messages.pop(sink.requests[-1].message_id or 0, None)
            return None  # the edit then finds no message and answers MessageGone
        if problem == "refused" and kind in ("edit", "draft"):
            return SinkError("message can't be edited")
        return None

    sink.script = script

    async def scenario() -> list[int]:
        streamer = make(sink, RateBudget(clock=clock), mode=mode)
        await clock.run(
            feed(
                clock,
                streamer,
                [answer[i : i + chunk] for i in range(0, len(answer), chunk)],
                every,
            )
        )
        return await clock.run(streamer.finish(note=note))

    ids = run_virtual(scenario())
    expected = pieces_of(answer, italic(note) if note else None)
    assert sorted(ids) == sorted(sink.messages), "no stray or missing messages"
    shown = [sink.messages[i] for i in ids]
    assert [m.text for m in shown] == [p.text for p in expected]
    for got, want in zip(shown, expected, strict=True):
        assert got == want or got == want.without_entities()
    assert sink.not_modified == 0


# -- buttons and rewriting an earlier answer ----------------------------------------------

STOP_KEYS = (Button("Stop", "stop"),)
AGAIN_KEYS = (Button("Again", "regenerate"),)


async def test_stop_rides_on_the_last_message_and_becomes_regenerate_at_the_end(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    streamer = make(sink, budget, limit=60, streaming_buttons=STOP_KEYS, final_buttons=AGAIN_KEYS)
    await clock.run(feed(clock, streamer, words(5), every=0.1))
    await clock.run_for(2.0)
    (first,) = sink.messages
    assert sink.buttons[first] == STOP_KEYS, "the message being written offers Stop"
    await clock.run(feed(clock, streamer, words(20), every=0.1))
    await clock.run_for(3.0)
    ids = sorted(sink.messages)
    assert len(ids) >= 2
    assert [sink.buttons[i] for i in ids] == [()] * (len(ids) - 1) + [STOP_KEYS]
    requests_before = len(sink.requests)
    final_ids = await clock.run(streamer.finish())
    assert [sink.buttons[i] for i in final_ids] == [()] * (len(final_ids) - 1) + [AGAIN_KEYS]
    # The text was already complete: swapping the buttons took exactly one edit.
    assert len(sink.requests) == requests_before + 1


async def test_an_answer_can_rewrite_the_messages_of_an_earlier_one(
    clock: FakeClock, sink: MemorySink, budget: SpyBudget
) -> None:
    old = [await clock.run(sink.send(f"old {n}", [], reply_to=None)) for n in range(3)]
    sink.requests.clear()
    finished: list[list[int]] = []
    streamer = make(sink, budget, take_over=old, on_finished=finished.append)
    streamer.append("new answer")
    ids = await clock.run(streamer.finish())
    assert ids == old[:1]
    assert sink.texts() == ["new answer"], "messages the new answer does not need are deleted"
    assert [r.kind for r in sink.requests] == ["edit", "delete", "delete"]
    assert finished == [ids]
