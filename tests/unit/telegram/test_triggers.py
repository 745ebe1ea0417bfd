"""Which group messages are addressed to the bot, and what the model is asked."""

from __future__ import annotations

from typing import Any

from telegram import Message

from bot.telegram.reading import turn_from_messages
from bot.telegram.triggers import (
    BotIdentity,
    conversation_key,
    mentions_bot,
    replies_to_bot,
    strip_mention,
)
from storage import ConversationKey

ME = BotIdentity(id=999, username="Phi4_Test_Bot")
ANNA = {"id": 1, "is_bot": False, "first_name": "Anna"}
BOT_USER = {"id": 999, "is_bot": True, "first_name": "Phi", "username": "Phi4_Test_Bot"}
GROUP = {"id": -100, "type": "supergroup", "title": "Team"}


def message(**fields: Any) -> Message:
    data: dict[str, Any] = {"message_id": 10, "date": 0, "chat": GROUP, "from": ANNA}
    data.update(fields)
    return Message.de_json(data, None)


def mention(text: str, name: str) -> dict[str, Any]:
    return {"type": "mention", "offset": text.index(name), "length": len(name)}


def test_a_mention_in_text_any_case_addresses_the_bot() -> None:
    text = "hey @phi4_test_bot what is 2+2?"
    assert mentions_bot(message(text=text, entities=[mention(text, "@phi4_test_bot")]), ME)


def test_a_mention_in_a_photo_caption_addresses_the_bot() -> None:
    caption = "@Phi4_Test_Bot what is this?"
    photo = [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]
    msg = message(
        photo=photo, caption=caption, caption_entities=[mention(caption, "@Phi4_Test_Bot")]
    )
    assert mentions_bot(msg, ME)


def test_a_text_mention_of_the_bot_user_addresses_it() -> None:
    text = "Phi, hello"
    entity = {"type": "text_mention", "offset": 0, "length": 3, "user": BOT_USER}
    assert mentions_bot(message(text=text, entities=[entity]), ME)


def test_mentioning_another_bot_or_plain_text_does_not() -> None:
    text = "@other_bot hi, phi4_test_bot"
    assert not mentions_bot(message(text=text, entities=[mention(text, "@other_bot")]), ME)
    assert not mentions_bot(message(text="no entities @Phi4_Test_Bot"), ME)


def test_a_reply_to_the_bot_addresses_it_but_not_a_reply_to_someone_else() -> None:
    to_bot = message(
        text="and then?",
        reply_to_message={"message_id": 5, "date": 0, "chat": GROUP, "from": BOT_USER, "text": "x"},
    )
    to_anna = message(
        text="and then?",
        reply_to_message={"message_id": 5, "date": 0, "chat": GROUP, "from": ANNA, "text": "x"},
    )
    assert replies_to_bot(to_bot, ME)
    assert not replies_to_bot(to_anna, ME)


def test_forum_topics_are_separate_conversations() -> None:
    in_topic = message(text="hi", message_thread_id=77, is_topic_message=True)
    assert conversation_key(in_topic) == ConversationKey(-100, 77)
    assert conversation_key(message(text="hi", message_thread_id=77)) == ConversationKey(-100)


def test_the_mention_is_removed_from_the_question() -> None:
    assert strip_mention("@phi4_test_bot, what is this?", ME) == "what is this?"
    assert strip_mention("what is @Phi4_Test_Bot doing", ME) == "what is doing"


def test_a_bare_mention_under_someone_elses_message_asks_about_that_message() -> None:
    replied = {
        "message_id": 5,
        "date": 0,
        "chat": GROUP,
        "from": {"id": 2, "is_bot": False, "first_name": "Ben"},
        "text": "Der Zug fährt um acht.",
    }
    msg = message(
        text="@Phi4_Test_Bot",
        entities=[mention("@Phi4_Test_Bot", "@Phi4_Test_Bot")],
        reply_to_message=replied,
    )
    turn = turn_from_messages([msg], ME, max_input_chars=1000)
    assert turn.text == 'Ben wrote: "Der Zug fährt um acht."'
    assert turn.sender_name == "Anna"
    assert turn.is_group


def test_a_too_long_message_is_rejected_with_its_length() -> None:
    turn = turn_from_messages(
        [message(chat={"id": 1, "type": "private", "first_name": "A"}, text="x" * 50)],
        ME,
        max_input_chars=10,
    )
    assert turn.rejection is not None
    assert "50 characters" in turn.rejection.user_message


def _sticker(*, animated: bool = False, video: bool = False) -> dict[str, object]:
    return {
        "file_id": "s",
        "file_unique_id": "u",
        "width": 512,
        "height": 512,
        "is_animated": animated,
        "is_video": video,
        "type": "regular",
        "emoji": "😀",
    }


def test_a_sticker_is_its_image_or_frame_and_its_emoji() -> None:
    static = turn_from_messages([message(sticker=_sticker())], ME, max_input_chars=100)
    assert static.rejection is None and static.text == "[Sticker 😀]"
    assert [(m.kind, m.how, m.mime_type) for m in static.media] == [
        ("image", "image", "image/webp")
    ]
    video = turn_from_messages([message(sticker=_sticker(video=True))], ME, max_input_chars=100)
    assert [(m.kind, m.how) for m in video.media] == [("image", "video_sticker")]
    animated = turn_from_messages(
        [message(sticker=_sticker(animated=True))], ME, max_input_chars=100
    )
    assert animated.media == () and animated.text == "[Sticker 😀]"


def test_video_notes_videos_gifs_and_documents_are_read_by_their_form() -> None:
    note = {"file_id": "n", "file_unique_id": "u", "length": 240, "duration": 3}
    video = {"file_id": "v", "file_unique_id": "u", "width": 2, "height": 2, "duration": 4}
    gif = {**video, "file_id": "g", "mime_type": "video/mp4", "file_name": "cat.gif.mp4"}
    pdf = {"file_id": "d", "file_unique_id": "u", "mime_type": "application/pdf"}
    forms = [
        turn_from_messages([message(**fields)], ME, max_input_chars=100).media[0]
        for fields in (
            {"video_note": note},
            {"video": video, "caption": "what?"},
            {"animation": gif, "document": gif},
            {"document": {**pdf, "file_name": "a.pdf"}},
            {"document": {**pdf, "mime_type": "text/plain", "file_name": "a.txt"}},
        )
    ]
    assert [(m.how, m.kind, m.duration) for m in forms] == [
        ("video_note", "image", 3.0),
        ("video", "image", 4.0),
        ("animation", "image", 4.0),
        ("pdf", None, None),
        ("text", None, None),
    ]


def test_a_location_is_rejected_as_unsupported() -> None:
    place = {"latitude": 1.0, "longitude": 2.0}
    turn = turn_from_messages([message(location=place)], ME, max_input_chars=10)
    assert turn.rejection is not None
    assert "text, photos" in turn.rejection.user_message


def test_in_a_group_a_reply_to_the_bot_is_not_quoted_but_in_private_every_reply_is() -> None:
    answer = {"message_id": 5, "date": 0, "chat": GROUP, "from": BOT_USER, "text": "Lima."}
    in_group = turn_from_messages(
        [message(text="and Chile?", reply_to_message=answer)], ME, max_input_chars=1000
    )
    assert in_group.text == "and Chile?"

    private = {"id": 1, "type": "private", "first_name": "Anna"}
    answer = {**answer, "chat": private}
    photo = [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}]
    own = {"message_id": 6, "date": 0, "chat": private, "from": ANNA, "photo": photo}
    to_bot = turn_from_messages(
        [message(chat=private, text="why?", reply_to_message=answer)], ME, max_input_chars=1000
    )
    assert to_bot.text == 'Replying to your earlier message: "Lima."\n\nwhy?'
    to_self = turn_from_messages(
        [message(chat=private, text="what is it?", reply_to_message=own)], ME, max_input_chars=99
    )
    assert to_self.text == "what is it?", "a photo without caption brings no words"
    assert [ref.file_id for ref in to_self.context_media] == ["p"]
    assert to_self.media == (), "the photo replied to is context, taken if still available"
