"""The order an answer's storage, checkpoints and chat updates must keep, written once.

What a crash leaves behind depends on it: before the answer's row exists the question is a
waiting turn (answered afresh at the next start); once it exists the answer is cut off and
its checkpoints hold the text shown so far; its end is stored only after the chat shows the
final state, and checkpoints stop before that end is stored, never after (a late checkpoint
must not turn a finished answer back into a streaming one).

`AnswerSteps` is walked by `TurnPipeline` as an answer goes; a step out of this order is a
bug and raises `OutOfOrder`. Steps of the answer's row (`ROW_STORED`, `WATCHED`,
`UNWATCHED`) are skipped when the row could not be stored; the end then stores it whole.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum


class Step(Enum):
    """One step in the life of an answer, as storage and the chat see it."""

    TURN_STORED = "turn stored"  # the question's row exists (stored on arrival)
    REQUESTED = "request sent"  # the model is asked; the answer's row is written meanwhile
    ROW_STORED = "answer row stored"  # from here a crash leaves a cut-off answer
    WATCHED = "checkpoints on"  # its text so far is saved on every checkpoint tick
    FIRST_TEXT = "first text"  # the model's first chunk, whenever it comes after the request
    GENERATED = "stream over"  # complete, stopped or failed
    UNWATCHED = "checkpoints off"  # before the end is stored, never after
    SHOWN = "final state shown"  # the chat shows the final text (or the error)
    RECORDED = "end stored"  # how the answer ended, with its messages


ORDER: tuple[Step, ...] = (
    Step.TURN_STORED,
    Step.REQUESTED,
    Step.ROW_STORED,
    Step.WATCHED,
    Step.GENERATED,
    Step.UNWATCHED,
    Step.SHOWN,
    Step.RECORDED,
)
"""The rule. `FIRST_TEXT` is not in it: it comes from the model's stream, at any moment
between `REQUESTED` and `GENERATED` (often before the answer's row is stored)."""

ROW_STEPS = frozenset({Step.ROW_STORED, Step.WATCHED, Step.UNWATCHED})
REQUIRES = {Step.WATCHED: Step.ROW_STORED, Step.UNWATCHED: Step.WATCHED}


class OutOfOrder(RuntimeError):
    """An answer took a step before one the rule puts first, or took one twice."""


class AnswerSteps:
    """Checks one answer's steps against `ORDER` as they happen; `observe` sees each one."""

    def __init__(self, observe: Callable[[Step], None] | None = None) -> None:
        self._observe = observe
        self._taken: list[Step] = []
        self._position = -1

    @property
    def taken(self) -> tuple[Step, ...]:
        return tuple(self._taken)

    def reach(self, step: Step) -> None:
        """Record `step`; `OutOfOrder` if the rule does not allow it now."""
        if step is Step.FIRST_TEXT:
            self._check_first_text()
        else:
            position = ORDER.index(step)
            if position <= self._position:
                raise OutOfOrder(f"{step.value} after {ORDER[self._position].value}")
            skipped = set(ORDER[self._position + 1 : position])
            if skipped - ROW_STEPS:
                names = ", ".join(s.value for s in ORDER if s in skipped - ROW_STEPS)
                raise OutOfOrder(f"{step.value} before {names}")
            needed = REQUIRES.get(step)
            if needed is not None and needed not in self._taken:
                raise OutOfOrder(f"{step.value} without {needed.value}")
            if step is Step.SHOWN and Step.WATCHED in self._taken:
                if Step.UNWATCHED not in self._taken:
                    raise OutOfOrder("final state shown while checkpoints are still on")
            self._position = position
        self._taken.append(step)
        if self._observe is not None:
            self._observe(step)

    def _check_first_text(self) -> None:
        if Step.FIRST_TEXT in self._taken:
            raise OutOfOrder("first text twice")
        if Step.REQUESTED not in self._taken or Step.GENERATED in self._taken:
            raise OutOfOrder("first text outside the model's stream")
