"""Plain values handed to a backend: a conversation of turns with their media."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.shared.media_kinds import MediaKind

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class Attachment:
    """Media bytes with the MIME type and file name the backend should see."""

    data: bytes
    mime_type: str
    filename: str

    @property
    def kind(self) -> MediaKind:
        """Images and audio are the only media Phi-4 takes; anything else is a bug upstream."""
        if self.mime_type.startswith("image/"):
            return "image"
        if self.mime_type.startswith("audio/"):
            return "audio"
        raise ValueError(f"unsupported attachment type {self.mime_type!r}")


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of the conversation; assistant turns carry no attachments."""

    role: Role
    text: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class Conversation:
    """The whole context sent on every request, so no backend needs server-side state."""

    turns: tuple[Turn, ...]
    system_prompt: str | None = None

    @property
    def media_kinds(self) -> frozenset[MediaKind]:
        return frozenset(a.kind for t in self.turns for a in t.attachments)

    def earlier_media_only(self, kinds: frozenset[MediaKind]) -> Conversation:
        """This conversation with the media of every turn but the last limited to `kinds`;
        what is dropped leaves `[image]` / `[audio]` in its turn's text.

        A server that refused images once must still answer the text turns that follow a
        photo, without the photo: the turn being answered keeps all of its own media.
        """
        *earlier, last = self.turns or (None,)
        if last is None or all(a.kind in kinds for t in earlier for a in t.attachments):
            return self
        kept: list[Turn] = []
        for turn in earlier:
            dropped = [a for a in turn.attachments if a.kind not in kinds]
            if not dropped:
                kept.append(turn)
                continue
            marks = " ".join(f"[{a.kind}]" for a in dropped)
            text = f"{marks} {turn.text}".strip()
            attachments = tuple(a for a in turn.attachments if a.kind in kinds)
            kept.append(Turn(turn.role, text, attachments))
        return Conversation((*kept, last), self.system_prompt)


@dataclass(frozen=True, slots=True)
class QueuePosition:
    """The Space's report that the request waits in its queue (rank 0 = next)."""

    rank: int
    queue_size: int | None = None
    eta_seconds: float | None = None
