"""What one reply's messages show, and the single request that brings them closer to a target."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.telegram.streaming.render import RenderedText

StepKind = Literal["send", "edit", "delete", "draft"]


@dataclass
class ShownMessage:
    """A message of the reply and the content it shows (as sent and accepted)."""

    message_id: int
    shown: RenderedText


@dataclass(frozen=True)
class Step:
    """One request: send piece `index`, edit message `index`, delete it, or show a draft.

    A delete with `index` -1 removes an orphan: a message replaced because it could not be
    edited any more.
    """

    kind: StepKind
    index: int
    want: RenderedText


@dataclass
class ReplyView:
    """The chat's side of a reply, kept as Telegram confirmed it; pure, no I/O.

    Message `i` is meant to hold piece `i`; a slot is None when its message is gone and
    the piece must be sent anew. Pieces whose entities Telegram refused are shown plain.
    """

    messages: list[ShownMessage | None] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)
    plain: set[int] = field(default_factory=set)
    draft: RenderedText | None = None
    draft_plain: bool = False

    @property
    def message_ids(self) -> list[int]:
        return [m.message_id for m in self.messages if m is not None]

    def next_step(self, wanted: list[RenderedText], *, drafting: bool, final: bool) -> Step | None:
        """The first request still needed, earlier pieces first; None when all is shown.

        While drafting, only the last piece is shown (as the draft). Messages the final
        state no longer needs are deleted; before the end they are left alone, since a
        growing answer usually needs them again.
        """
        if drafting:
            if not wanted:
                return None
            want = wanted[-1].without_entities() if self.draft_plain else wanted[-1]
            return None if want == self.draft else Step("draft", len(wanted) - 1, want)
        for index, want in enumerate(wanted):
            if index in self.plain:
                want = want.without_entities()
            message = self.messages[index] if index < len(self.messages) else None
            if message is None:
                return Step("send", index, want)
            if message.shown != want:
                return Step("edit", index, want)
        if final:
            while len(self.messages) > len(wanted) and self.messages[-1] is None:
                self.messages.pop()
            if len(self.messages) > len(wanted):
                return Step("delete", len(self.messages) - 1, RenderedText(""))
            if self.orphans:
                return Step("delete", -1, RenderedText(""))
        return None

    def target(self, step: Step) -> int:
        """The id of the message an edit or delete is about."""
        if step.index < 0:
            return self.orphans[0]
        return self.message(step.index).message_id

    def done(self, step: Step, message_id: int | None = None) -> None:
        """Record that Telegram carried out `step` (a send returns `message_id`)."""
        if step.kind == "send":
            assert message_id is not None
            message = ShownMessage(message_id, step.want)
            if step.index < len(self.messages):
                self.messages[step.index] = message
            else:
                self.messages.append(message)
        elif step.kind == "edit":
            self.message(step.index).shown = step.want
        elif step.kind == "delete" and step.index < 0:
            self.orphans.pop(0)
        elif step.kind == "delete":
            self.messages.pop()
        else:
            self.draft = step.want

    def lost(self, index: int, *, still_there: bool = False) -> None:
        """The message is gone or can no longer be edited: its piece goes out anew.

        One that is `still_there` shows stale text; it is deleted once the answer is final.
        """
        message = self.messages[index]
        if still_there and message is not None:
            self.orphans.append(message.message_id)
        self.messages[index] = None

    def drop_entities(self, step: Step) -> bool:
        """Show this step's piece without entities from now on; False if it had none."""
        if not step.want.entities:
            return False
        if step.kind == "draft":
            self.draft_plain = True
        else:
            self.plain.add(step.index)
        return True

    def message(self, index: int) -> ShownMessage:
        message = self.messages[index]
        assert message is not None
        return message
