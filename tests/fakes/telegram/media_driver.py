"""The users' side for moving pictures: video notes, videos and GIFs, shaped as the Bot API
sends them (`VideoNote`, `Video`, `Animation` — a GIF also carries `document`, as Telegram
keeps it for older clients)."""

from __future__ import annotations

import io
from typing import Any

from .driver import ChatDriver, MessageRef, _extension
from .state import Chat, Message, User


def _video_facts(data: bytes) -> tuple[int, int, int]:
    """Width, height and whole seconds as Telegram's servers measure them; zeros for bytes
    that are not a readable video (a damaged upload)."""
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            seconds = (container.duration or 0) / av.time_base
            return stream.width, stream.height, round(seconds)
    except (av.FFmpegError, IndexError):
        return 0, 0, 0


class MediaDriver(ChatDriver):
    """Mixed into `FakeTelegram` beside `ChatDriver`: sends video notes, videos and GIFs."""

    def send_video_note(
        self,
        chat: Chat,
        user: User,
        mp4: bytes,
        *,
        duration: int | None = None,
        reply_to: MessageRef | None = None,
        thread_id: int | None = None,
    ) -> Message:
        """A round video note (a square MP4; `length` is its diameter). No caption: Telegram
        has none for video notes."""
        stored = self.world.add_file(mp4, "video_notes", ".mp4")
        width, _, seconds = _video_facts(mp4)
        note = {
            **self._file_fields(stored),
            "length": width,
            "duration": seconds if duration is None else duration,
        }
        return self._user_message(chat, user, {"video_note": note}, reply_to, thread_id)

    def send_video(
        self,
        chat: Chat,
        user: User,
        mp4: bytes,
        *,
        caption: str | None = None,
        duration: int | None = None,
        file_name: str | None = None,
        mime_type: str = "video/mp4",
        size_override: int | None = None,
        reply_to: MessageRef | None = None,
        thread_id: int | None = None,
    ) -> Message:
        """A video; `duration` claims a length the file may not have (Telegram takes the
        sender's word for it)."""
        stored = self.world.add_file(mp4, "videos", ".mp4", size_override)
        width, height, seconds = _video_facts(mp4)
        video: dict[str, Any] = {
            **self._file_fields(stored),
            "width": width,
            "height": height,
            "duration": seconds if duration is None else duration,
            "mime_type": mime_type,
        }
        if file_name is not None:
            video["file_name"] = file_name
        content: dict[str, Any] = {"video": video}
        self._caption(content, caption, None)
        return self._user_message(chat, user, content, reply_to, thread_id)

    def send_animation(
        self,
        chat: Chat,
        user: User,
        mp4: bytes,
        *,
        caption: str | None = None,
        file_name: str = "animation.gif.mp4",
        reply_to: MessageRef | None = None,
        thread_id: int | None = None,
    ) -> Message:
        """A GIF, which Telegram converts to a silent MP4 and sends as `animation` plus the
        same file as `document`."""
        stored = self.world.add_file(mp4, "animations", _extension(file_name))
        width, height, seconds = _video_facts(mp4)
        fields = {**self._file_fields(stored), "file_name": file_name, "mime_type": "video/mp4"}
        animation = {**fields, "width": width, "height": height, "duration": seconds}
        content: dict[str, Any] = {"animation": animation, "document": fields}
        self._caption(content, caption, None)
        return self._user_message(chat, user, content, reply_to, thread_id)
