"""Fitting a conversation to a window: the newest whole turns, media first to go."""

from __future__ import annotations

import pytest

from bot.phi4.conversation import Attachment, Conversation, Turn
from bot.phi4.errors import TurnTooLong
from bot.phi4.tokens import prompt_tokens
from bot.phi4.window import answer_room, fit
from tests.media_factory import make_png, make_wav

PHOTO = Attachment(make_png(448, 448), "image/png", "p.png")
VOICE = Attachment(make_wav(20.0, sample_rate=16_000), "audio/wav", "v.wav")


def chat(pairs: int, *, words: int = 40, system: str | None = "Be brief.") -> Conversation:
    turns: list[Turn] = []
    for n in range(pairs):
        turns.append(Turn("user", f"question {n} " + "word " * words))
        turns.append(Turn("assistant", f"answer {n} " + "word " * words))
    turns.append(Turn("user", "the question being answered"))
    return Conversation(tuple(turns), system_prompt=system)


def test_everything_is_kept_when_it_fits() -> None:
    conversation = chat(3)
    fitted = fit(conversation, budget=10_000)
    assert fitted.conversation == conversation
    assert fitted.turns_kept == fitted.turns_given == 7
    assert fitted.tokens == prompt_tokens(conversation)


def test_the_newest_whole_turns_are_kept_within_the_budget() -> None:
    conversation = chat(30)
    fitted = fit(conversation, budget=600)
    kept = fitted.conversation.turns
    assert kept == conversation.turns[-len(kept) :]  # a suffix: newest, whole, in order
    assert 3 <= len(kept) < len(conversation.turns)
    assert fitted.tokens <= 600
    assert prompt_tokens(fitted.conversation) == fitted.tokens
    assert fitted.conversation.system_prompt == "Be brief."


def test_the_kept_history_starts_with_a_question() -> None:
    for budget in range(150, 900, 7):
        first = fit(chat(30), budget=budget).conversation.turns[0]
        assert first.role == "user"


def test_the_current_turn_alone_is_sent_when_nothing_older_fits() -> None:
    conversation = chat(5, words=400)
    fitted = fit(conversation, budget=40)
    assert fitted.conversation.turns == (conversation.turns[-1],)


def test_older_media_goes_before_older_turns() -> None:
    turns = (
        Turn("user", "what is this?", (PHOTO,)),
        Turn("assistant", "a red square"),
        Turn("user", "and this?", (VOICE,)),
        Turn("assistant", "a tone"),
        Turn("user", "thanks, and now?"),
    )
    conversation = Conversation(turns)
    full = prompt_tokens(conversation)
    fitted = fit(conversation, budget=full - 100)  # the photo (545 tokens) must go
    texts = [t.text for t in fitted.conversation.turns]
    assert fitted.turns_kept == 5
    assert fitted.media_dropped == 1
    assert texts[0] == "what is this? [image]"
    assert fitted.conversation.turns[0].attachments == ()
    assert fitted.conversation.turns[2].attachments == (VOICE,)
    tight = fit(conversation, budget=120)
    assert tight.media_dropped == 2
    assert all(not t.attachments for t in tight.conversation.turns)


def test_the_current_turn_keeps_all_its_media() -> None:
    conversation = Conversation((Turn("user", "compare", (PHOTO, PHOTO)),))
    fitted = fit(conversation, budget=2000)
    assert fitted.conversation.turns[0].attachments == (PHOTO, PHOTO)


@pytest.mark.parametrize(
    ("turn", "system", "named"),
    [
        (Turn("user", "word " * 3000), None, "shorten its text"),
        (Turn("user", "hear", (VOICE,) * 3), None, "recording"),
        (Turn("user", "look", (PHOTO,) * 4), None, "fewer"),
        (Turn("user", "hi"), "rule " * 3000, "/system"),
    ],
)
def test_a_turn_that_cannot_fit_alone_says_what_to_shorten(
    turn: Turn, system: str | None, named: str
) -> None:
    with pytest.raises(TurnTooLong) as caught:
        fit(Conversation((turn,), system_prompt=system), budget=600)
    assert named in caught.value.user_message


def test_the_answer_keeps_its_room_but_never_more_than_a_quarter() -> None:
    assert answer_room(131_072, 4096) == 4096
    assert answer_room(1200, 4096) == 300
    assert answer_room(512, 100) == 100
