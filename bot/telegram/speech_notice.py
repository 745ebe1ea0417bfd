"""Tells a chat once that Phi-4 may mishear speech in a language it was not trained on."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import Message

from bot.conversation.prompt import ChatSetting
from bot.conversation.turns import ReplyTarget
from bot.shared import Sentence
from bot.shared.bounded import BoundedDict
from bot.telegram.speech import is_speech_language, speaks
from bot.telegram.triggers import language_of
from storage import Store

log = logging.getLogger(__name__)

SPEECH_NOTICE = Sentence(
    "Note: I recognise speech well in English, Chinese, German, French, Italian, Japanese, "
    "Spanish and Portuguese; in other languages I may mishear what is said."
)
REMEMBERED_CHATS = 10_000
"""Chats kept in memory as told; one forgotten costs a settings read, never a second notice."""


class SpeechNotice:
    """Tells a chat, once, that Phi-4 may mishear a voice note in a language it was not
    trained on (judged by the speaker's Telegram language), so a poor transcript or answer
    comes as no surprise. Remembered in the chat's settings, so a restart does not repeat it;
    in memory only the `remember` chats told last are kept, so a bot met by ever more chats
    does not keep ever more of them.
    """

    def __init__(
        self,
        store: Store,
        say: Callable[[ReplyTarget, str], Awaitable[object]],
        *,
        remember: int = REMEMBERED_CHATS,
    ) -> None:
        self._store = store
        self._say = say
        self._told: BoundedDict[int, bool] = BoundedDict(remember)

    def needed(self, message: Message) -> bool:
        """Whether `message` is speech in a language Phi-4 may mishear, in a chat not told."""
        if not speaks(message) or message.chat_id in self._told:
            return False
        return not is_speech_language(language_of(message))

    async def tell(self, target: ReplyTarget) -> None:
        chat_id = target.key.chat_id
        if chat_id in self._told:
            return
        self._told[chat_id] = True
        try:
            if await self._store.get_setting(chat_id, ChatSetting.SPEECH_NOTICE) is not None:
                return
            await self._store.set_setting(chat_id, ChatSetting.SPEECH_NOTICE, "told")
        except Exception as exc:  # a notice is not worth failing over
            log.info("the speech notice in chat %s was not recorded: %s", chat_id, exc)
        await self._say(
            ReplyTarget(target.key, target.is_group, None, target.language), SPEECH_NOTICE
        )
