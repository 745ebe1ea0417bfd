"""The phases of one streamed reply and the only moves between them, in one table.

A reply waits for its first text (perhaps showing a queue position meanwhile), streams,
is brought to its final state, and ends there, unless Telegram refuses it for good first.
`advance` is the one way a reply changes phase; any move the table does not list is a bug
and raises, instead of leaving a combination of flags nobody thought of.
"""

from __future__ import annotations

from enum import Enum


class Phase(Enum):
    """Where a reply is in its life; what it sends next depends on it."""

    WAITING = "waiting"  # no answer text yet, nothing to show
    STATUS = "status"  # no answer text yet; a status line (queue position) is wanted
    STREAMING = "streaming"  # answer text is arriving and shown paced
    FINISHING = "finishing"  # the final state is fixed; the chat is being brought to it
    FINISHED = "finished"  # the chat shows the final state
    BROKEN = "broken"  # Telegram refused for good: nothing more is sent


ALLOWED: dict[Phase, frozenset[Phase]] = {
    Phase.WAITING: frozenset({Phase.STATUS, Phase.STREAMING, Phase.FINISHING, Phase.BROKEN}),
    Phase.STATUS: frozenset({Phase.STREAMING, Phase.FINISHING, Phase.BROKEN}),
    Phase.STREAMING: frozenset({Phase.FINISHING, Phase.BROKEN}),
    Phase.FINISHING: frozenset({Phase.FINISHED, Phase.BROKEN}),
    Phase.FINISHED: frozenset(),
    Phase.BROKEN: frozenset(),
}
"""Every move a reply may make. A refusal may break it in any phase before the end; after
FINISHED or BROKEN nothing is sent any more."""

BEFORE_TEXT = frozenset({Phase.WAITING, Phase.STATUS})
"""The phases in which a status line may still be shown and the first text is awaited."""


class IllegalTransition(RuntimeError):
    """A reply was asked to move between two phases the table does not connect."""

    def __init__(self, current: Phase, wanted: Phase) -> None:
        super().__init__(f"a reply cannot go from {current.value} to {wanted.value}")
        self.current = current
        self.wanted = wanted


def advance(current: Phase, wanted: Phase) -> Phase:
    """`wanted`, if the table allows the move from `current`; else `IllegalTransition`."""
    if wanted not in ALLOWED[current]:
        raise IllegalTransition(current, wanted)
    return wanted


class Shown(Enum):
    """What the chat has shown of the reply so far; it only ever moves forward, and it
    decides a request's priority (the first sight of an answer goes before everything)."""

    NOTHING = 0
    STATUS = 1  # a status line, but none of the answer yet
    ANSWER = 2

    def at_least(self, other: Shown) -> bool:
        return self.value >= other.value
