"""How processes sharing one database take turns: the interface, and its one-process form.

A process answering in a conversation first *claims* it (a lease that dies with the process),
answers the conversation's waiting turns oldest first, then releases it. Turns a process
stored but could not claim stay waiting in the database for the holder, or for whichever
process claims the conversation next; `wake` tells the others there is work. One process at
a time *leads* (long-polls Telegram). With SQLite there is one process: every claim succeeds
at once and the lanes in memory already hold every waiting turn.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from storage.models import ConversationKey, PendingAnswer


@dataclass(frozen=True, slots=True)
class WaitingTurn:
    """A stored user turn that no answer replies to yet."""

    key: ConversationKey
    conversation_id: int
    user_turn_id: int
    user_message_id: int | None


def default_instance_id() -> str:
    """Host, process id and a random tail: unique among processes sharing a database."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Coordination(Protocol):
    """Leases, liveness and wake-ups between the processes that share one database."""

    instance_id: str

    @property
    def shared(self) -> bool:
        """True when other processes may answer in the same conversations."""

    async def open(self, *, on_lost: Callable[[], None]) -> None:
        """Announce this process as alive. `on_lost` is called if that later stops being
        true (the coordination connection dropped): every lease is gone with it."""

    async def close(self) -> None: ...

    async def claim(self, key: ConversationKey) -> bool:
        """Take the conversation's lease; False when another process holds it. Leases may
        cover more than one conversation (all topics of a group): this process's claims
        of them stack, and each is released on its own."""

    async def release(self, key: ConversationKey) -> None: ...

    def holds(self, key: ConversationKey) -> bool:
        """Whether this process still holds the conversation's lease (False once the
        coordination connection is lost)."""

    async def next_waiting(self, key: ConversationKey) -> WaitingTurn | None:
        """The oldest recent turn of the conversation that no answer replies to."""

    async def waiting_conversations(self, within: float | None = None) -> list[ConversationKey]:
        """Conversations with waiting turns (stored in the last `within` seconds; default:
        as far back as start-up recovery looks) that no other process holds."""

    async def orphaned_answers(self) -> list[PendingAnswer]:
        """Answers left `streaming` by processes that are gone, now marked interrupted;
        each is reported to one process, once."""

    async def live_instances(self) -> int:
        """How many processes share the database now (at least 1: this one)."""

    async def try_lead(self) -> bool:
        """Become the one process that long-polls; True when this process is (or was) it."""

    async def stop_leading(self) -> None:
        """Give the polling lease up now (shutting down), so another process polls at once."""

    async def wake(self, key: ConversationKey) -> None:
        """Tell every process (this one too) that the conversation has a waiting turn."""

    def on_wake(self, callback: Callable[[ConversationKey], None]) -> None:
        """Call `callback` with the key of every `wake`, from any process."""

    async def stop_elsewhere(self, key: ConversationKey) -> bool:
        """Ask the process writing an answer in the conversation to stop it (/stop sent to
        another process); False when no answer is being written there."""

    def on_stop(self, callback: Callable[[ConversationKey], None]) -> None:
        """Call `callback` with the key of every `stop_elsewhere` from another process."""


class LocalCoordination:
    """One process alone on its database: it holds every lease and always leads."""

    shared = False

    def __init__(self, instance_id: str | None = None) -> None:
        self.instance_id = instance_id or default_instance_id()

    async def open(self, *, on_lost: Callable[[], None]) -> None:
        return None

    async def close(self) -> None:
        return None

    async def claim(self, key: ConversationKey) -> bool:
        return True

    async def release(self, key: ConversationKey) -> None:
        return None

    def holds(self, key: ConversationKey) -> bool:
        return True

    async def next_waiting(self, key: ConversationKey) -> WaitingTurn | None:
        return None

    async def waiting_conversations(self, within: float | None = None) -> list[ConversationKey]:
        return []

    async def orphaned_answers(self) -> list[PendingAnswer]:
        return []

    async def live_instances(self) -> int:
        return 1

    async def try_lead(self) -> bool:
        return True

    async def stop_leading(self) -> None:
        return None

    async def wake(self, key: ConversationKey) -> None:
        return None

    def on_wake(self, callback: Callable[[ConversationKey], None]) -> None:
        return None

    async def stop_elsewhere(self, key: ConversationKey) -> bool:
        return False

    def on_stop(self, callback: Callable[[ConversationKey], None]) -> None:
        return None
