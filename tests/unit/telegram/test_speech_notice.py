"""The speech notice is told once per chat, and its memory of told chats stays bounded however
many chats send voice notes: a chat it forgot is found told in the store, not told again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from telegram import Message

from bot.conversation.turns import ReplyTarget
from bot.telegram.speech_notice import SPEECH_NOTICE, SpeechNotice
from storage import ConversationKey, SQLiteStore


def voice_note(chat_id: int, language: str = "uk") -> Message:
    data: dict[str, Any] = {
        "message_id": 5,
        "date": 0,
        "chat": {"id": chat_id, "type": "private", "first_name": "Olena"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Olena", "language_code": language},
        "voice": {"file_id": "v", "file_unique_id": "v", "duration": 2},
    }
    return Message.de_json(data, None)


def target(chat_id: int) -> ReplyTarget:
    return ReplyTarget(ConversationKey(chat_id), False, 5, "uk")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "bot.db", max_attachment_bytes=1000) as opened:
        yield opened


async def test_a_chat_is_told_once_and_only_about_misheard_languages(store: SQLiteStore) -> None:
    said: list[tuple[int, str]] = []

    async def say(to: ReplyTarget, text: str) -> None:
        said.append((to.key.chat_id, text))

    notice = SpeechNotice(store, say)
    assert not notice.needed(voice_note(1, "de")), "German speech is heard well"
    assert notice.needed(voice_note(1))
    await notice.tell(target(1))
    await notice.tell(target(1))
    assert said == [(1, SPEECH_NOTICE)]
    assert not notice.needed(voice_note(1))


async def test_memory_keeps_the_chats_told_last_and_a_forgotten_one_is_not_told_twice(
    store: SQLiteStore,
) -> None:
    said: list[int] = []

    async def say(to: ReplyTarget, text: str) -> None:
        said.append(to.key.chat_id)

    notice = SpeechNotice(store, say, remember=2)
    for chat_id in (1, 2, 3):
        await notice.tell(target(chat_id))
    assert [notice.needed(voice_note(c)) for c in (1, 2, 3)] == [True, False, False]
    await notice.tell(target(1))  # forgotten in memory; the chat's settings still say told
    assert said == [1, 2, 3]
