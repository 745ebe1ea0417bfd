"""What one reply's messages show, and the single request that brings them closer to a target."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.telegram.streaming.buttons import NO_BUTTONS, Keyboard
from bot.telegram.streaming.render import RenderedText

StepKind = Literal["send", "edit", "delete", "draft"]


@dataclass
class ShownMessage:
    """A message of the reply and the content it shows (as sent and accepted)."""

    message_id: int
    shown: RenderedText
    buttons: Keyboard = NO_BUTTONS


# What a message taken over from an earlier answer is taken to show: nothing any piece
# equals, so its first step is an edit.
UNKNOWN = RenderedText("\x00")


@dataclass(frozen=True)
class Step:
    """One request: send piece `index`, edit message `index`, delete it, or show a draft.

    A delete with `index` -1 removes an orphan: a message replaced because it could not be
    edited any more. `buttons` go under the message sent or edited (drafts carry none).
    """

    kind: StepKind
    index: int
    want: RenderedText
    buttons: Keyboard = NO_BUTTONS


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

    @classmethod
    def taking_over(cls, message_ids: list[int]) -> ReplyView:
        """A view whose messages already exist (an earlier answer's), to be edited into the
        new one; messages it does not need are deleted at the end."""
        return cls(messages=[ShownMessage(message_id, UNKNOWN) for message_id in message_ids])

    @property
    def message_ids(self) -> list[int]:
        return [m.message_id for m in self.messages if m is not None]

    def next_step(
        self,
        wanted: list[RenderedText],
        *,
        drafting: bool,
        final: bool,
        buttons: Keyboard = NO_BUTTONS,
    ) -> Step | None:
        """The first request still needed, earlier pieces first; None when all is shown.

        `buttons` belong under the last piece only: a message that stops being the last
        loses them with the edit that completes it. While drafting, only the last piece is
        shown (as the draft, without buttons). Messages the final state no longer needs are
        deleted; before the end they are left alone, since a growing answer usually needs
        them again.
        """
        if drafting:
            if not wanted:
                return None
            want = wanted[-1].without_entities() if self.draft_plain else wanted[-1]
            return None if want == self.draft else Step("draft", len(wanted) - 1, want)
        last = len(wanted) - 1
        for index, want in enumerate(wanted):
            if index in self.plain:
                want = want.without_entities()
            under = buttons if index == last else NO_BUTTONS
            message = self.messages[index] if index < len(self.messages) else None
            if message is None:
                return Step("send", index, want, under)
            if message.shown != want or message.buttons != under:
                return Step("edit", index, want, under)
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
            message = ShownMessage(message_id, step.want, step.buttons)
            if step.index < len(self.messages):
                self.messages[step.index] = message
            else:
                self.messages.append(message)
        elif step.kind == "edit":
            message = self.message(step.index)
            message.shown, message.buttons = step.want, step.buttons
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
