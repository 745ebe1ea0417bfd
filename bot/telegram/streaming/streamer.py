"""One answer's Markdown chunks turned into paced Telegram messages that end exactly right."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from bot.shared import Sentence
from bot.telegram.streaming.buttons import NO_BUTTONS, Keyboard
from bot.telegram.streaming.clock import Clock
from bot.telegram.streaming.pacing import Priority, RateBudget
from bot.telegram.streaming.phases import BEFORE_TEXT, Phase, Shown, advance
from bot.telegram.streaming.render import (
    TELEGRAM_LIMIT,
    RenderedText,
    italic,
    join,
    plain,
    render_markdown,
    split_for_telegram,
)
from bot.telegram.streaming.reply_view import ReplyView, Step
from bot.telegram.streaming.sink import (
    EntitiesRejected,
    FloodWait,
    MessageGone,
    MessageSink,
    NotModified,
    SinkError,
    TransientSendError,
)
from bot.telegram.streaming.unfinished import settle_unfinished

log = logging.getLogger(__name__)

EMPTY_ANSWER = Sentence("The model returned an empty answer.")
# Network failures: wait 0.5, 1, 2, 4, 8, 8 ... seconds; the final state gives up after 8.
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 2.0
"""Capped low so an answer reaches the chat within 2 s of Telegram's return from an outage."""
FINAL_ATTEMPTS = 18
"""Tries of a final text before giving up: 0.5 + 1 + 15 × 2 s, about 30 s of outage."""


@dataclass(frozen=True, slots=True)
class ReplyOptions:
    """Where one reply goes and how it looks: fixed when it is opened."""

    chat_id: int
    is_group: bool
    interval: float
    """Minimum seconds between two visible updates."""
    reply_to: int | None
    """The message the reply's first message answers."""
    mode: Literal["edit", "draft"] = "edit"
    """`draft` streams a private chat's reply as a native draft (groups always edit)."""
    draft_id: int | None = None
    limit: int = TELEGRAM_LIMIT
    streaming_buttons: Keyboard = NO_BUTTONS
    final_buttons: Keyboard = NO_BUTTONS
    take_over: Sequence[int] = ()
    """Messages of an earlier answer, edited into this one."""


class ReplyStreamer:
    """Shows one answer while it streams and guarantees its final state.

    A single worker task owns every request: chunks only mark the text as changed, so the
    model's stream is never slowed down, and each visible update carries everything received
    so far, rendered once. Message `i` always holds piece `i` of `split_for_telegram`; an
    answer longer than one message continues in plain follow-up messages in the same chat
    (and topic), and only the first one replies to the user's message.

    Buttons are part of the wanted state: the last message carries `streaming_buttons`
    while the answer is written and `final_buttons` once it is finished, and they change
    with the edits the text needs anyway (or with one paced edit of their own). An answer
    may `take_over` the messages of an earlier one: they are edited into the new answer.

    Its life is a `Phase` (waiting, status, streaming, finishing, finished, broken), moved
    only through `phases.advance`; what the chat has shown so far is a `Shown`.
    `split` cuts a rendering into the messages that show it (`split_for_telegram` at
    `limit` unless given: a guest answer has one message only).
    """

    def __init__(
        self,
        sink: MessageSink,
        budget: RateBudget,
        options: ReplyOptions,
        *,
        clock: Clock | None = None,
        on_finished: Callable[[list[int]], None] | None = None,
        translate: Callable[[str], str] = str,
        split: Callable[[RenderedText], list[RenderedText]] | None = None,
    ) -> None:
        self._sink = sink
        self._budget = budget
        self._options = options
        # Where the options ask for drafts, a refusal of them turns the rest into edits.
        self._mode: Literal["edit", "draft"] = "edit" if options.is_group else options.mode
        self._clock = clock or budget.clock
        self._draft_id = options.draft_id or random.randrange(1, 2**31)
        self._split = split or partial(split_for_telegram, limit=options.limit)
        self._phase = Phase.WAITING
        self._shown = Shown.NOTHING
        self._parts: list[str] = []
        self._text = ""
        self._status: str | None = None
        self._version = 0  # bumped by every change that may alter what is shown
        self._rendered_version = -1
        self._desired: list[RenderedText] = []
        self._desired_is_answer = False
        self._final: list[RenderedText] | None = None
        take_over = options.take_over
        self._view = ReplyView.taking_over(list(take_over)) if take_over else ReplyView()
        self._on_finished = on_finished
        self._translate = translate
        self.answer_shown_at: float | None = None
        self._last_request = -math.inf
        self._failures = 0
        self._changed = asyncio.Event()
        self._finishing = asyncio.Event()
        self._idle = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    # -- the API ------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The Markdown received so far."""
        if self._parts:
            self._text += "".join(self._parts)
            self._parts.clear()
        return self._text

    @property
    def message_ids(self) -> list[int]:
        """Ids of the answer's messages, in reading order."""
        return self._view.message_ids

    @property
    def phase(self) -> Phase:
        return self._phase

    def _enter(self, phase: Phase) -> None:
        self._phase = advance(self._phase, phase)

    def append(self, chunk: str) -> None:
        """Take the next chunk; O(len(chunk)), never waits (the worker does the sending)."""
        if not chunk or self._final is not None:
            return
        self._parts.append(chunk)
        if chunk.isspace():
            return  # trailing whitespace never changes the rendering (it is trimmed)
        if self._phase in BEFORE_TEXT:
            self._enter(Phase.STREAMING)
        self._version += 1
        self._wake()

    async def show_status(self, text: str) -> None:
        """Show a placeholder such as "⏳ In queue: position 3" until the answer starts.

        Returns once it is shown (or made moot by the answer); cancelling the wait does not
        cancel the update, which the worker finishes on its own.
        """
        if self._phase not in BEFORE_TEXT:
            return
        text = self._translate(text)
        if text == self._status:
            return
        if self._phase is Phase.WAITING:
            self._enter(Phase.STATUS)
        self._status = text
        self._version += 1
        self._wake()
        await self._idle.wait()

    async def finish(self, *, note: str | None = None) -> list[int]:
        """Bring every message to the final rendering (plus `note` in italics) and wait for it.

        Penalties are waited out and failures retried; the final state is sent even if an
        intermediate update was just sent or refused. Returns the message ids.
        """
        return await self._conclude(italic(self._translate(note)) if note else None)

    async def fail(self, user_message: str) -> list[int]:
        """End the answer with an error: what arrived so far is kept, the error appended."""
        return await self._conclude(plain(self._translate(user_message)))

    # -- the worker -------------------------------------------------------------------

    async def _conclude(self, note: RenderedText | None) -> list[int]:
        if self._final is None:
            answer = render_markdown(self.text)
            final = join(answer, note) if note is not None else answer
            if not final.text:
                final = italic(self._translate(EMPTY_ANSWER))
            self._final = self._split(final)
            self._failures = 0
            if self._phase is not Phase.BROKEN:
                self._enter(Phase.FINISHING)
            self._finishing.set()
            self._wake()
        assert self._worker is not None
        await self._worker
        if self._on_finished is not None:
            self._on_finished(self.message_ids)
            self._on_finished = None
        return self.message_ids

    def _wake(self) -> None:
        if self._worker is not None and self._worker.done():
            return  # it gave up for good; nothing more will be sent
        self._idle.clear()
        self._changed.set()
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._phase is not Phase.BROKEN:
                if self._phase is Phase.FINISHING:
                    op = self._next_op(render=True)
                    if op is None:
                        self._enter(Phase.FINISHED)
                        return
                    await self._acquire(self._priority(op))
                    await self._perform_released(op)
                    continue
                unchanged = self._version == self._rendered_version
                if unchanged and self._next_op(render=False) is None:
                    self._idle.set()
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                await self._update()
        finally:
            self._idle.set()

    async def _update(self) -> None:
        """One intermediate request: wait for the interval and a slot, then show the latest."""
        priority = self._priority(self._next_op(render=False))
        if priority is not Priority.FIRST:
            due = self._last_request + self._options.interval
            wait = due - self._clock.now()
            if wait > 0 and not await self._unless_finishing(lambda: self._clock.sleep(wait)):
                return
        if not await self._unless_finishing(partial(self._acquire, priority)):
            return
        op = self._next_op(render=True)  # also picks up the final state if it just arrived
        await self._perform_released(op)

    async def _acquire(self, priority: Priority) -> None:
        """Wait for a slot of the budget for one request to this reply's chat."""
        options = self._options
        await self._budget.acquire(options.chat_id, is_group=options.is_group, priority=priority)

    async def _perform_released(self, op: Step | None) -> None:
        """Perform `op` in a granted slot, and give the slot back to the budget after."""
        try:
            if op is not None:
                with self._budget.granted(self._options.chat_id):
                    await self._perform(op)
        finally:
            self._budget.release()

    async def _unless_finishing(self, start: Callable[[], Awaitable[None]]) -> bool:
        """Await `start()` unless `finish` comes first (then it is cancelled); True if done."""
        if self._finishing.is_set():
            return False
        task = asyncio.ensure_future(start())
        stop = asyncio.ensure_future(self._finishing.wait())
        try:
            await asyncio.wait((task, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait((task,))
        if task.cancelled():
            return False
        task.result()
        return True

    # -- what to do next --------------------------------------------------------------

    def _wanted(self, *, render: bool) -> list[RenderedText]:
        """The pieces the chat should show now; renders only if something changed."""
        if self._final is not None:
            return self._final
        if render and self._rendered_version != self._version:
            self._rendered_version = self._version
            pieces: list[RenderedText] = []
            if self._phase is Phase.STREAMING:
                pieces = self._split(render_markdown(settle_unfinished(self.text)))
            self._desired_is_answer = bool(pieces)
            if not pieces and self._status:
                pieces = self._split(plain(self._status))[:1]
            self._desired = pieces
        return self._desired

    def _next_op(self, *, render: bool) -> Step | None:
        final = self._final is not None
        drafting = self._mode == "draft" and not final
        buttons = self._options.final_buttons if final else self._options.streaming_buttons
        return self._view.next_step(
            self._wanted(render=render), drafting=drafting, final=final, buttons=buttons
        )

    def _priority(self, op: Step | None) -> Priority:
        """First sight of the answer, then completing messages, then growing the last one."""
        shows_answer = self._phase not in BEFORE_TEXT
        if self._shown is Shown.NOTHING or (shows_answer and self._shown is not Shown.ANSWER):
            return Priority.FIRST
        if self._final is not None:
            return Priority.FINAL
        if op is not None and (op.kind == "send" or op.index < len(self._desired) - 1):
            return Priority.FINAL
        return Priority.EDIT

    # -- doing it ---------------------------------------------------------------------

    async def _perform(self, op: Step) -> None:
        """Send one request and record what the chat shows now; errors change the plan."""
        self._last_request = self._clock.now()
        text, entities = op.want.text, op.want.entities
        message_id = None
        try:
            if op.kind == "send":
                reply_to = self._options.reply_to if op.index == 0 else None
                message_id = await self._sink.send(
                    text, entities, reply_to=reply_to, buttons=op.buttons
                )
            elif op.kind == "edit":
                await self._sink.edit(self._view.target(op), text, entities, buttons=op.buttons)
            elif op.kind == "delete":
                await self._sink.delete(self._view.target(op))
            else:
                await self._sink.draft(self._draft_id, text, entities)
        except NotModified as exc:
            if op.kind != "edit":
                self._refused(op, exc)
                return
        except FloodWait as exc:
            # The rate limiter every request passes has told the budget: the chat (and, for
            # a guest message, the bot) waits the penalty out before the next request.
            log.info("chat %s: flood control, waiting %g s", self._options.chat_id, exc.retry_after)
            return
        except EntitiesRejected as exc:
            if not self._view.drop_entities(op):
                self._refused(op, exc)
            return
        except MessageGone as exc:
            if op.kind == "edit":
                self._view.lost(op.index)
            elif op.kind == "delete":
                self._view.done(op)
            else:
                self._refused(op, exc)
            return
        except TransientSendError as exc:
            await self._back_off(exc)
            return
        except SinkError as exc:
            self._refused(op, exc)
            return
        self._view.done(op, message_id)
        self._failures = 0
        if op.kind != "delete":
            answer = self._final is not None or self._desired_is_answer
            self._show(Shown.ANSWER if answer else Shown.STATUS)

    def _show(self, shown: Shown) -> None:
        """The chat now shows `shown` (what it showed before stays counted)."""
        if shown.at_least(self._shown):
            self._shown = shown
        if self._shown is Shown.ANSWER and self.answer_shown_at is None:
            self.answer_shown_at = self._clock.now()

    async def _back_off(self, exc: TransientSendError) -> None:
        self._failures += 1
        if self._final is not None and self._failures >= FINAL_ATTEMPTS:
            log.error(
                "chat %s: giving up after %d failures: %s",
                self._options.chat_id,
                FINAL_ATTEMPTS,
                exc,
            )
            self._enter(Phase.BROKEN)
            return
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._failures - 1))
        log.warning("chat %s: %s; retrying in %g s", self._options.chat_id, exc, delay)
        if self._final is not None:
            await self._clock.sleep(delay)
        else:
            await self._unless_finishing(lambda: self._clock.sleep(delay))

    def _refused(self, op: Step, exc: SinkError) -> None:
        """Telegram refused for good: go around it where possible, else stop sending."""
        if op.kind == "edit":
            log.warning("chat %s: edit refused (%s); sending anew", self._options.chat_id, exc)
            self._view.lost(op.index, still_there=True)
        elif op.kind == "delete":
            log.warning("chat %s: delete refused (%s); leaving it", self._options.chat_id, exc)
            self._view.done(op)
        elif op.kind == "draft":
            log.warning("chat %s: drafts refused (%s); editing instead", self._options.chat_id, exc)
            self._mode = "edit"
        else:
            log.error("chat %s: cannot send the answer: %s", self._options.chat_id, exc)
            self._enter(Phase.BROKEN)
