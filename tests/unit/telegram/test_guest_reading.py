"""A guest summon read once: question, context, conversation; button data and cutting."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Message

from bot.conversation.errors import InputTooLong
from bot.conversation.turns import guest_caller, guest_key
from bot.telegram.guest.reading import guest_turn
from bot.telegram.streaming import guest_codes as codes
from bot.telegram.streaming.guest_sink import CUT_MARK, OneMessage, message_number
from bot.telegram.streaming.render import RenderedText, plain, utf16_len
from bot.telegram.triggers import BotIdentity
from storage import ConversationKey

ME = BotIdentity(id=999, username="phi4_test_bot")
ANNA = {"id": 1, "is_bot": False, "first_name": "Anna", "language_code": "ru"}
BEN = {"id": 2, "is_bot": False, "first_name": "Ben"}
BOT_USER = {"id": 999, "is_bot": True, "first_name": "Phi", "username": "phi4_test_bot"}
CHAT = {"id": -100, "type": "supergroup", "title": "Friends"}
PHOTO = [{"file_id": "p", "file_unique_id": "u", "width": 64, "height": 48, "file_size": 9}]


def summon(text: str = "@phi4_test_bot what is it?", **fields: Any) -> Message:
    data: dict[str, Any] = {
        "message_id": 10,
        "date": 0,
        "chat": CHAT,
        "from": ANNA,
        "text": text,
        "guest_query_id": "q1",
    }
    data.update(fields)
    return Message.de_json(data, None)


def replied(**fields: Any) -> dict[str, Any]:
    return {"message_id": 5, "date": 0, "chat": CHAT, "from": BEN} | fields


def test_a_summon_is_a_fresh_turn_of_its_callers_guest_conversation() -> None:
    turn = guest_turn(summon(), ME, max_input_chars=100)
    assert turn.text == "what is it?"
    assert turn.key == ConversationKey(-100, -1) == guest_key(-100, 1)
    assert guest_caller(turn.key) == 1 and guest_caller(ConversationKey(-100, 7)) is None
    assert turn.fresh and turn.sender_id == 1 and turn.is_group
    assert turn.target.guest is not None and turn.target.guest.query_id == "q1"
    assert turn.target.language == "ru"
    assert turn.target.replying_to(3).guest == turn.target.guest, "kept by every reply target"


def test_the_replied_to_message_is_context_text_quoted_media_read() -> None:
    photo = replied(photo=PHOTO, caption="the menu")
    turn = guest_turn(
        summon("@phi4_test_bot translate", reply_to_message=photo), ME, max_input_chars=500
    )
    assert turn.text == 'Ben wrote: "the menu"\n\ntranslate'
    assert [ref.kind for ref in turn.media] == ["image"]
    assert turn.fresh


def test_a_reply_to_its_own_guest_answer_for_the_caller_continues_without_quoting() -> None:
    own = replied(text="Lima.") | {"from": BOT_USER, "guest_bot_caller_user": ANNA}
    turn = guest_turn(
        summon("@phi4_test_bot and Chile?", reply_to_message=own), ME, max_input_chars=500
    )
    assert turn.text == "and Chile?" and not turn.fresh
    for_ben = own | {"guest_bot_caller_user": BEN}
    other = guest_turn(
        summon("@phi4_test_bot and?", reply_to_message=for_ben), ME, max_input_chars=500
    )
    assert other.fresh and other.text == 'Phi wrote: "Lima."\n\nand?'


def test_a_question_too_long_is_refused_with_its_length() -> None:
    turn = guest_turn(summon("@phi4_test_bot " + "x" * 50), ME, max_input_chars=20)
    assert isinstance(turn.rejection, InputTooLong)


def test_button_data_names_the_conversation_and_refuses_anything_else() -> None:
    data = codes.button_data(codes.STOP, -1001234567890123, 12345678901)
    assert len(data.encode()) <= 64
    pressed = codes.read_button(data)
    assert pressed is not None and pressed.key == guest_key(-1001234567890123, 12345678901)
    assert pressed.action == codes.STOP
    for bad in (None, "stop", "regenerate", "g:delete:1:2", "g:stop:1:-2", "g:stop:x:2"):
        assert codes.read_button(bad) is None


def test_whole_answer_payload_round_trips_within_telegrams_alphabet() -> None:
    wanted = codes.WholeAnswer(-1001234567890, 12345678901, 987654)
    payload = wanted.payload
    assert len(payload) <= 64 and all(c.isalnum() or c in "_-" for c in payload)
    assert codes.read_whole_answer(payload) == wanted
    assert codes.read_whole_answer("hello") is None


@pytest.mark.parametrize("words", [10, 2000])
def test_one_message_keeps_a_short_answer_and_cuts_a_long_one_at_a_word(words: int) -> None:
    one = OneMessage()
    text = " ".join(f"w{n}" for n in range(words))
    (piece,) = one(plain(text))
    assert piece.utf16_len <= 4096
    if words == 10:
        assert piece.text == text and not one.cut
    else:
        assert one.cut and piece.text.endswith(" " + CUT_MARK)
        assert text.startswith(piece.text[: -len(CUT_MARK) - 1])
        assert utf16_len(piece.text) > 4000


def test_a_guest_message_goes_by_a_stable_number() -> None:
    assert message_number("AgAAAKw") == message_number("AgAAAKw") != message_number("AgAAAKx")
    assert OneMessage()(RenderedText("")) == []
