"""The model's answer pumped into its view, and how that generation ended.

`TurnPipeline` runs `generate` as a task of its own, which the conversation's lane cancels
when the user presses Stop, and reads its end with `outcome`: complete, cut at the model's
length limit, stopped, or failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from bot.conversation.answer_order import AnswerSteps, Step
from bot.conversation.ports import AnswerView, ChatReplies
from bot.conversation.turns import ReplyTarget
from bot.phi4 import Backend, Conversation, Phi4Error, QueuePosition
from bot.phi4.errors import AnswerCutAtLength
from bot.shared import Sentence
from bot.shared.tasks import TaskSupervisor
from storage import AnswerStatus

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FirstChunk:
    """When the model's first chunk of an answer arrived (`time.monotonic()`), once it has."""

    at: float | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a generation ended: its status, the failure when it failed, and the length cut
    when the server ended a complete answer at its limit."""

    status: AnswerStatus
    failure: Phi4Error | None = None
    cut: AnswerCutAtLength | None = None


async def generate(
    backend: Backend,
    replies: ChatReplies,
    tasks: TaskSupervisor,
    target: ReplyTarget,
    conversation: Conversation,
    view: AnswerView,
    first_chunk: FirstChunk,
    steps: AnswerSteps,
) -> None:
    """Pump the model's chunks into the view; typing is shown until the first one.

    A queue position is shown in the background (the view brings it up to date on its
    own and ends that wait when it finishes), so the model's stream never waits for it.
    """

    def on_queue(position: QueuePosition) -> None:
        if view.text:
            return
        status = Sentence("⏳ In queue: position {n}", n=position.rank + 1)
        tasks.spawn(view.show_status(status), name=f"queue-status-{target.key}")

    chunks = backend.stream(conversation, on_queue=on_queue)
    try:
        async with replies.typing(target):
            first = await anext(chunks, None)
        if first is not None:
            first_chunk.at = time.monotonic()
            steps.reach(Step.FIRST_TEXT)
            view.append(first)
            async for chunk in chunks:
                view.append(chunk)
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def outcome(generation: asyncio.Task[None], chat_id: int) -> Outcome:
    """Wait for the generation and say how it ended. Its cancellation (Stop, or the lane
    closing) is a stopped answer; the caller's own cancellation is raised."""
    try:
        await generation
    except AnswerCutAtLength as exc:  # the answer stands as far as it went
        return Outcome(AnswerStatus.COMPLETE, cut=exc)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
        return Outcome(AnswerStatus.STOPPED)
    except Phi4Error as exc:
        return Outcome(AnswerStatus.FAILED, failure=exc)
    except Exception as exc:
        log.exception("the answer in chat %s failed", chat_id)
        return Outcome(AnswerStatus.FAILED, failure=Phi4Error(str(exc)))
    return Outcome(AnswerStatus.COMPLETE)
