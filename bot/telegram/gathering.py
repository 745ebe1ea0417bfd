"""Gathers the messages that make one turn: an album's parts, and media with its late question."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from telegram import Message

Submit = Callable[[list[Message]], None]


class Keeper(Protocol):
    """Told of each message held back, and of the held messages once they were handed over
    (`held_journal` keeps them in the store meanwhile, through a crash)."""

    def hold(self, message: Message) -> None: ...

    def released(self, messages: Sequence[Message]) -> None: ...


class Timer(Protocol):
    def cancel(self) -> None: ...


Schedule = Callable[[float, Callable[[], None]], Timer]
"""Runs a callback after some seconds (`loop.call_later` in the bot, a manual one in tests)."""

Sender = tuple[int, int | None, int]
"""Whose messages gather together: (chat id, forum topic, sender id)."""


def _sender(message: Message) -> Sender:
    thread = message.message_thread_id if message.is_topic_message else None
    if message.from_user is not None:
        who = message.from_user.id
    elif message.sender_chat is not None:
        who = message.sender_chat.id
    else:
        who = 0
    return (message.chat_id, thread, who)


def awaits_question(messages: Sequence[Message]) -> bool:
    """A photo, album, video or document sent without any caption: its question may follow
    in the sender's next message (typed, or spoken as a voice note)."""
    return all(
        not (m.caption or m.text) and bool(m.photo or m.video or m.document) for m in messages
    )


def is_question(message: Message) -> bool:
    """A message that can be the question about media sent just before: text or a voice note."""
    if message.media_group_id is not None:
        return False
    return bool(message.voice) or (bool(message.text) and not message.effective_attachment)


@dataclass(slots=True)
class _Held:
    """Messages of one sender waiting to become a turn."""

    messages: list[Message]
    album: str | None
    """The `media_group_id` while an album's parts still arrive; None once it is complete."""
    timer: Timer | None = field(default=None)


class TurnGatherer:
    """Hands each message over as (part of) one turn, at once unless more of it may follow.

    Telegram delivers an album's parts as separate updates with one `media_group_id` and no
    "last part" marker, so an album is complete once no part arrived for `album_quiet`
    seconds. Media sent without a caption then waits up to `follow_up_wait` seconds for the
    same person's next message in the same chat: text or a voice note is its question, and
    both become one turn. Anything else that person sends hands the waiting media over
    alone first, so nothing of theirs is held back; other people and other chats are never
    held at all.
    """

    def __init__(
        self,
        submit: Submit,
        *,
        follow_up_wait: float,
        album_quiet: float = 1.0,
        schedule: Schedule | None = None,
        keeper: Keeper | None = None,
    ) -> None:
        self._submit = submit
        self._keeper = keeper
        self._wait = follow_up_wait
        self._quiet = album_quiet
        self._schedule = schedule
        self._held: dict[Sender, _Held] = {}

    def add(self, message: Message) -> None:
        """Take an addressed message; it is handed over now, or with what belongs to it."""
        who = _sender(message)
        held = self._held.get(who)
        group = message.media_group_id
        if held is not None:
            if group is not None and group == held.album:
                self._keep(message)
                held.messages.append(message)
                self._arm(who, held, self._quiet, self._album_complete)
                return
            if is_question(message) and awaits_question(held.messages):
                self._release(who, follow_up=message)
                return
            self._release(who)
        if group is not None:
            self._keep(message)
            held = self._held[who] = _Held([message], group)
            self._arm(who, held, self._quiet, self._album_complete)
        elif self._wait > 0 and awaits_question([message]):
            self._keep(message)
            held = self._held[who] = _Held([message], None)
            self._arm(who, held, self._wait, self._release)
        else:
            self._submit([message])

    def _keep(self, message: Message) -> None:
        if self._keeper is not None:
            self._keeper.hold(message)

    def awaits(self, message: Message) -> bool:
        """Whether `message` would be the question of media its sender just sent (in a group
        such a message is taken even though it does not address the bot)."""
        held = self._held.get(_sender(message))
        return held is not None and is_question(message) and awaits_question(held.messages)

    def release(self, message: Message) -> None:
        """Hand over at once whatever `message`'s sender has waiting in its chat (a command
        from them comes next, and must find their media already taken)."""
        if _sender(message) in self._held:
            self._release(_sender(message))

    def flush_all(self) -> None:
        """Hand over everything waiting now (at shutdown), rather than dropping it."""
        for who in list(self._held):
            self._release(who)

    def _arm(
        self, who: Sender, held: _Held, seconds: float, then: Callable[[Sender], None]
    ) -> None:
        if held.timer is not None:
            held.timer.cancel()
        schedule = self._schedule or asyncio.get_running_loop().call_later
        held.timer = schedule(seconds, lambda: then(who))

    def _album_complete(self, who: Sender) -> None:
        held = self._held.get(who)
        if held is None:
            return
        held.album = None
        if self._wait > 0 and awaits_question(held.messages):
            self._arm(who, held, self._wait, self._release)
        else:
            self._release(who)

    def _release(self, who: Sender, *, follow_up: Message | None = None) -> None:
        held = self._held.pop(who, None)
        if held is None:
            return
        if held.timer is not None:
            held.timer.cancel()
        messages = sorted(held.messages, key=lambda m: m.message_id)
        self._submit([*messages, follow_up] if follow_up is not None else messages)
        if self._keeper is not None:
            self._keeper.released(messages)  # after the turn was handed over for storing
