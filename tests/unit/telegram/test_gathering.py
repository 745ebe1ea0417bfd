"""Which messages become one turn: albums, and media followed by its question."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from telegram import Message

from bot.telegram.gathering import TurnGatherer

ALICE = {"id": 1, "is_bot": False, "first_name": "Alice"}
BOB = {"id": 2, "is_bot": False, "first_name": "Bob"}
PRIVATE = {"id": 1, "type": "private", "first_name": "Alice"}
GROUP = {"id": -100, "type": "supergroup", "title": "Team"}
PHOTO = [{"file_id": "p", "file_unique_id": "p", "width": 10, "height": 10}]
VOICE = {"file_id": "v", "file_unique_id": "v", "duration": 2, "mime_type": "audio/ogg"}
DOCUMENT = {"file_id": "d", "file_unique_id": "d", "file_name": "a.pdf"}


class ManualTimers:
    """A `Schedule` whose callbacks run only when the test says the time has come."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, Callable[[], None], list[bool]]] = []

    def __call__(self, seconds: float, callback: Callable[[], None]) -> ManualTimers.Handle:
        cancelled = [False]
        self.pending.append((seconds, callback, cancelled))
        return ManualTimers.Handle(cancelled)

    class Handle:
        def __init__(self, cancelled: list[bool]) -> None:
            self._cancelled = cancelled

        def cancel(self) -> None:
            self._cancelled[0] = True

    def live(self) -> list[float]:
        return [seconds for seconds, _, cancelled in self.pending if not cancelled[0]]

    def fire(self) -> None:
        """Run every timer still armed (as if its time had passed)."""
        due, self.pending = self.pending, []
        for _, callback, cancelled in due:
            if not cancelled[0]:
                callback()


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, **fields: Any) -> Message:
        self.n += 1
        data: dict[str, Any] = {"message_id": self.n, "date": 0, "chat": PRIVATE, "from": ALICE}
        data.update(fields)
        return Message.de_json(data, None)


def gatherer(wait: float = 3.0) -> tuple[TurnGatherer, ManualTimers, list[list[int]]]:
    timers = ManualTimers()
    turns: list[list[int]] = []
    gather = TurnGatherer(
        lambda messages: turns.append([m.message_id for m in messages]),
        follow_up_wait=wait,
        schedule=timers,
    )
    return gather, timers, turns


def test_a_photo_without_caption_and_the_next_voice_note_are_one_turn() -> None:
    gather, timers, turns = gatherer()
    message = Counter()
    gather.add(message(photo=PHOTO))
    assert turns == [] and timers.live() == [3.0]
    gather.add(message(voice=VOICE))
    assert turns == [[1, 2]]
    assert timers.live() == []


def test_media_without_a_follow_up_is_answered_alone_after_the_wait() -> None:
    gather, timers, turns = gatherer()
    message = Counter()
    gather.add(message(document=DOCUMENT))
    timers.fire()
    assert turns == [[1]]
    gather.add(message(text="and this?"))
    assert turns == [[1], [2]], "a question after the wait is a turn of its own"


def test_captioned_media_text_and_voice_are_never_held() -> None:
    gather, timers, turns = gatherer()
    message = Counter()
    gather.add(message(photo=PHOTO, caption="what is it?"))
    gather.add(message(text="hello"))
    gather.add(message(voice=VOICE))
    assert turns == [[1], [2], [3]] and timers.live() == []


def test_anything_else_from_the_sender_hands_the_waiting_media_over_first() -> None:
    gather, _timers, turns = gatherer()
    message = Counter()
    gather.add(message(photo=PHOTO))
    gather.add(message(document=DOCUMENT))
    assert turns == [[1]], "another file is not a question: the photo goes alone"
    gather.add(message(photo=PHOTO, caption="compare"))
    assert turns == [[1], [2], [3]]


def test_other_people_and_other_chats_are_not_held() -> None:
    gather, _timers, turns = gatherer()
    message = Counter()
    gather.add(message(photo=PHOTO, chat=GROUP))
    gather.add(message(text="@bot hi", chat=GROUP, **{"from": BOB}))
    gather.add(message(text="hello"))  # Alice, in her private chat
    assert turns == [[2], [3]]
    bobs_voice = message(voice=VOICE, chat=GROUP, **{"from": BOB})
    assert not gather.awaits(bobs_voice)
    alices_voice = message(voice=VOICE, chat=GROUP)
    assert gather.awaits(alices_voice)
    gather.add(alices_voice)
    assert turns == [[2], [3], [1, 5]]


def test_an_album_is_gathered_then_waits_for_its_question() -> None:
    gather, timers, turns = gatherer()
    message = Counter()
    gather.add(message(photo=PHOTO, media_group_id="a"))
    gather.add(message(photo=PHOTO, media_group_id="a"))
    assert timers.live() == [1.0]
    timers.fire()
    assert turns == [] and timers.live() == [3.0]
    gather.add(message(text="which is nicer?"))
    assert turns == [[1, 2, 3]]


def test_a_captioned_album_goes_once_complete_and_a_new_album_ends_the_last() -> None:
    gather, timers, turns = gatherer()
    message = Counter()
    gather.add(message(photo=PHOTO, media_group_id="a", caption="both"))
    gather.add(message(photo=PHOTO, media_group_id="a"))
    gather.add(message(photo=PHOTO, media_group_id="b"))
    assert turns == [[1, 2]]
    timers.fire()
    timers.fire()
    assert turns == [[1, 2], [3]]


def test_with_no_wait_media_goes_at_once_and_albums_still_gather() -> None:
    gather, timers, turns = gatherer(wait=0)
    message = Counter()
    gather.add(message(photo=PHOTO))
    assert turns == [[1]]
    gather.add(message(photo=PHOTO, media_group_id="a"))
    timers.fire()
    assert turns == [[1], [2]] and timers.live() == []


def test_release_and_flush_hand_over_what_waits() -> None:
    gather, timers, turns = gatherer()
    message = Counter()
    gather.add(message(photo=PHOTO))
    gather.release(message(text="/new"))
    assert turns == [[1]]
    gather.add(message(photo=PHOTO, chat=GROUP))
    gather.add(message(photo=PHOTO, media_group_id="z"))
    gather.flush_all()
    assert sorted(turns) == [[1], [3], [4]] and timers.live() == []


class RecordingKeeper:
    """The gatherer's Keeper, noting what it was told."""

    def __init__(self) -> None:
        self.held: list[int] = []
        self.handed_over: list[list[int]] = []

    def hold(self, message: Message) -> None:
        self.held.append(message.message_id)

    def released(self, messages: Sequence[Message]) -> None:
        self.handed_over.append([m.message_id for m in messages])


def test_each_message_held_back_is_told_and_released_with_its_turn_alone() -> None:
    timers = ManualTimers()
    turns: list[list[int]] = []
    keeper = RecordingKeeper()
    gather = TurnGatherer(
        lambda messages: turns.append([m.message_id for m in messages]),
        follow_up_wait=3.0,
        schedule=timers,
        keeper=keeper,
    )
    message = Counter()
    gather.add(message(photo=PHOTO, caption="what is it?"))  # 1: handed over
    gather.add(message(text="hello"))  # 2
    gather.add(message(photo=PHOTO))  # 3: waits for its question
    gather.add(message(voice=VOICE))  # 4: is that question, handed over with it
    gather.add(message(photo=PHOTO, media_group_id="a", caption="both"))  # 5: album part
    gather.add(message(photo=PHOTO, media_group_id="a"))  # 6
    assert keeper.held == [3, 5, 6] and keeper.handed_over == [[3]]
    timers.fire()
    assert turns == [[1], [2], [3, 4], [5, 6]]
    assert keeper.handed_over == [[3], [5, 6]], "the question was never held"
