"""The one interface every model backend implements: a conversation in, text chunks out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from bot.phi4.conversation import Conversation, QueuePosition
from bot.shared import MediaKind

QueueListener = Callable[[QueuePosition], None]


@runtime_checkable
class Backend(Protocol):
    """A Phi-4 server. Open it with `async with`, or `aclose()` it when done."""

    name: str

    @property
    def accepts(self) -> frozenset[MediaKind]:
        """The media kinds it takes now; a server may learn that it refuses some."""
        ...

    def stream(
        self, conversation: Conversation, *, on_queue: QueueListener | None = None
    ) -> AsyncIterator[str]:
        """Yield the answer's new text as it is generated; raise a `Phi4Error` on failure.

        `on_queue` is called (synchronously) whenever the server reports a queue position.
        Cancelling the iteration (or `aclose()` on it) cancels the request on the server side.
        """
        ...

    async def probe(self) -> str:
        """Cheaply check the server is there; a line saying what answered, or a `Phi4Error`."""
        ...

    async def aclose(self) -> None: ...


class AsyncClosing(ABC):
    """`async with backend:` closes it on the way out; backends implement `aclose()`."""

    @abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
