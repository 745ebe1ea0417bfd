"""How the fake Space plays one queued event: Gradio 5's SSE messages in order, or a failure."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.space import FakeSpace

QUOTA_MESSAGE = (
    "You have exceeded your GPU quota (60s requested vs. 0s left). "
    "Create a free account to get more daily usage quota."
)


@dataclass
class SpaceRequest:
    """One `/queue/join`, its `/run/predict`, and how its answer stream went."""

    event_id: str
    session_hash: str
    fn_index: int
    trigger_id: int | None
    history: list[Any]
    files: list[Any]
    headers: dict[str, str]
    predict: dict[str, Any] | None = None
    failure: str = ""
    after: int = 1
    chunks_sent: int = 0
    completed: bool = False
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


async def send_message(response: web.StreamResponse, message: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(message)}\n\n".encode())


class EventStream:
    """The SSE messages of one event, in Gradio's order, with the configured failure."""

    def __init__(
        self,
        space: FakeSpace,
        request: web.Request,
        response: web.StreamResponse,
        record: SpaceRequest,
    ) -> None:
        self.space, self.request, self.response, self.record = space, request, response, record

    async def send(self, msg: str, **fields: Any) -> None:
        await send_message(self.response, {"msg": msg, "event_id": self.record.event_id, **fields})

    async def wait(self, seconds: float, until: asyncio.Event | None = None) -> bool:
        """Wait `seconds` (or, given `until`, until it is set), heartbeating as Gradio does.

        Returns True if the event was cancelled meanwhile.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        stop = self.record.cancelled
        targets = [stop] if until is None else [stop, until]
        while not any(e.is_set() for e in targets):
            left = (
                self.space.heartbeat_interval
                if until is not None
                else min(end - loop.time(), self.space.heartbeat_interval)
            )
            if left <= 0:
                break
            waiters = [asyncio.ensure_future(e.wait()) for e in targets]
            done, _ = await asyncio.wait(waiters, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if not done and (until is not None or loop.time() < end):
                await send_message(self.response, {"msg": "heartbeat"})
        return stop.is_set()

    async def run(self) -> None:
        space, record = self.space, self.record
        size = space.queue_ahead
        for rank in range(size, -1, -1) if size else ():
            eta = rank * space.queue_delay
            await self.send("estimation", rank=rank, queue_size=size + 1, rank_eta=eta)
            if await self.wait(space.queue_delay):
                return await self.cancelled()
        await self.send("process_starts", eta=None, progress_data=None)
        await send_message(self.response, {"msg": "heartbeat"})
        if record.failure in ("quota", "error", "unexpected_error"):
            return await self.fail(record.failure)
        missing = missing_files(record.history, {u.path for u in space.uploads})
        if missing:
            return await self.fail("error", f"File {missing} is not in the upload folder.")
        answer = space.reply(record) if space.reply else space.answer
        pieces = [answer[i : i + space.chunk_size] for i in range(0, len(answer), space.chunk_size)]
        base = len(record.history)
        for number, piece in enumerate(pieces or [""]):
            if number and await self.wait(space.chunk_delay):
                return await self.cancelled()
            if record.failure in ("broken", "truncated", "stall") and number == record.after:
                if record.failure == "broken" and self.request.transport is not None:
                    self.request.transport.close()
                    raise ConnectionResetError("dropped on purpose")
                if record.failure == "truncated":
                    return
                if await self.wait(space.stall_seconds):
                    return await self.cancelled()
            if space.pause_after is not None and number == space.pause_after:
                if await self.wait(0.0, until=space.resumed):
                    return await self.cancelled()
            if number == 0:
                message = {"role": "assistant", "content": piece, "metadata": None, "options": None}
                data = [[*record.history, message]]
            else:
                data = [[["append", [base, "content"], piece]]]
            await self.send(
                "process_generating", output={"data": data, "is_generating": True}, success=True
            )
            record.chunks_sent += 1
            await space.notify()
        final = [
            *record.history,
            {"role": "assistant", "content": answer, "metadata": None, "options": None},
        ]
        await self.send(
            "process_completed", output={"data": [final], "is_generating": False}, success=True
        )
        record.completed = True

    async def fail(self, kind: str, text: str | None = None) -> None:
        self.record.completed = True
        if kind == "unexpected_error":
            await self.send(
                "unexpected_error", message="Internal error in the fake Space", success=False
            )
            return
        error = QUOTA_MESSAGE if kind == "quota" else text or "Generation failed: the model raised."
        output = {"error": error, "title": "Error", "visible": True, "duration": 10}
        await self.send("process_completed", output=output, success=False)

    async def cancelled(self) -> None:
        """What Gradio's `/cancel` does to a running event: completes it with no output."""
        self.record.completed = True
        await self.send("process_completed", output={}, success=True)


def missing_files(history: list[Any], uploaded: set[str]) -> str | None:
    for message in history:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, dict) and isinstance(content.get("file"), dict):
            path = content["file"].get("path")
            if path not in uploaded:
                return str(path)
    return None
