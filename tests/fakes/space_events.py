"""How the fake Space plays one queued event: Gradio's SSE messages in order, or a failure."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
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

    def file_counts(self) -> Counter[str]:
        """How many times each file path reached the answer function, over both inputs."""
        return Counter(path for message in [*self.history, *self.files] for path in paths(message))


def parts_of(content: Any) -> list[Any]:
    """A message's content as a list of pieces, whichever Gradio shape it came in."""
    return content if isinstance(content, list) else [content]


def paths(message: Any) -> list[str]:
    """The file paths one chatbot message carries."""
    found = []
    content = message.get("content") if isinstance(message, dict) else None
    for part in parts_of(content):
        if isinstance(part, dict) and isinstance(part.get("file"), dict):
            found.append(str(part["file"].get("path")))
    return found


def refused_shape(messages: list[Any], parts: bool) -> bool:
    """Whether Gradio would refuse these messages: 6 wants lists of parts, 5 refuses lists."""
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) != parts:
            return True
    return False


def text_of(content: Any) -> str:
    """The text of a message's content in either shape."""
    if isinstance(content, str):
        return content
    return "".join(
        p.get("text", "") for p in parts_of(content) if isinstance(p, dict) and "text" in p
    )


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
        for rank in range(size, -1, -1):
            eta = rank * space.queue_delay if size else None
            await self.send("estimation", rank=rank, queue_size=size + 1, rank_eta=eta)
            if size and await self.wait(space.queue_delay):
                return await self.cancelled()
        await self.send("process_starts", eta=None, progress_data=None)
        await send_message(self.response, {"msg": "heartbeat"})
        if record.failure in ("quota", "error", "unexpected_error"):
            return await self.fail(record.failure)
        parts = int(space.version.split(".")[0]) >= 6
        served = {u.path for u in space.uploads} - space.forgotten
        missing = missing_files([*record.history, *record.files], served)
        if missing or refused_shape([*record.history, *record.files], parts):
            return await self.fail("refused")
        answer = space.reply(record) if space.reply else space.answer
        pieces = space.pieces(answer)
        base = len(record.history)
        for number, piece in enumerate(pieces or [""]):
            if number and await self.wait(space.chunk_delay):
                return await self.cancelled()
            if record.failure == "crash" and number == record.after:
                return await self.fail("crash")
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
                data = [[*record.history, assistant(piece, parts)]]
            else:
                path = [base, "content", 0, "text"] if parts else [base, "content"]
                data = [[["append", path, piece]]]
            await self.send(
                "process_generating", output={"data": data, "is_generating": True}, success=True
            )
            record.chunks_sent += 1
            await space.notify()
        final = [*record.history, assistant(answer, parts)]
        await self.send(
            "process_completed", output={"data": [final], "is_generating": False}, success=True
        )
        record.completed = True

    async def fail(self, kind: str, text: str | None = None) -> None:
        """End the event as Gradio does: `quota`/`error` via `gr.Error`, shown with its message;
        `crash` (mid-answer) and `refused` (input Gradio could not read) as `"error": null`."""
        self.record.completed = True
        if kind in ("crash", "refused"):
            title = None if kind == "crash" else "Error"
            await self.send("process_completed", output={"error": None}, success=False, title=title)
            return
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


def assistant(text: str, parts: bool) -> dict[str, Any]:
    content: Any = [{"text": text, "type": "text"}] if parts else text
    return {"role": "assistant", "metadata": None, "content": content, "options": None}


def missing_files(messages: list[Any], uploaded: set[str]) -> str | None:
    """The first file path no upload produced: Gradio refuses it (not in the upload folder)."""
    for message in messages:
        for path in paths(message):
            if path not in uploaded:
                return path
    return None
