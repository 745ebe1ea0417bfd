"""Stored history becomes the conversation the model reads."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.conversation.prompt import build_conversation
from bot.phi4 import MediaNotSupported
from storage import HistoryTurn, StoredAttachment

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def attachment(data: bytes | None) -> StoredAttachment:
    return StoredAttachment("image", "image/png", 3, "p.png", "abc", data)


def test_group_turns_carry_the_senders_name_and_dropped_media_a_placeholder() -> None:
    history = [
        HistoryTurn(1, "user", "look", "Anna", (attachment(None),), NOW),
        HistoryTurn(2, "assistant", "A cat.", None, (), NOW),
        HistoryTurn(3, "user", "and this?", "Ben", (attachment(b"png"),), NOW),
    ]
    conversation = build_conversation(history, system_prompt="Be brief.", label_senders=True)
    assert conversation.system_prompt == "Be brief."
    assert [t.text for t in conversation.turns] == [
        "Anna: look [image]",
        "A cat.",
        "Ben: and this?",
    ]
    assert conversation.turns[2].attachments[0].data == b"png"
    assert conversation.turns[0].attachments == ()


def test_private_turns_are_not_labelled() -> None:
    history = [HistoryTurn(1, "user", "hi", "Anna", (), NOW)]
    conversation = build_conversation(history, system_prompt=None, label_senders=False)
    assert conversation.turns[0].text == "hi"


def test_the_unsupported_media_message_names_what_the_model_takes() -> None:
    assert (
        MediaNotSupported.refusing(frozenset({"image"}), frozenset()).user_message
        == "This model takes text only, not images."
    )
    assert (
        MediaNotSupported.refusing(frozenset({"audio"}), frozenset({"image"})).user_message
        == "This model takes text and images, not audio."
    )
