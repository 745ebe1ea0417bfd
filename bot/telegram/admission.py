"""The door: allow-lists, turns gathered, and each admitted message read into one turn."""

from __future__ import annotations

import logging

from telegram import Bot, Message

from bot.conversation.access import AccessPolicy
from bot.conversation.dispatcher import TurnDispatcher
from bot.conversation.turns import IncomingTurn, ReplyTarget
from bot.shared import Sentence
from bot.shared.bounded import BoundedDict
from bot.telegram.gathering import TurnGatherer
from bot.telegram.held_journal import HeldJournal
from bot.telegram.reading import turn_from_messages
from bot.telegram.speech_notice import SpeechNotice
from bot.telegram.triggers import BotIdentity, is_private, reply_target

log = logging.getLogger(__name__)

NOT_ENABLED = Sentence("I am not enabled in this chat.")
PRIVATE_BOT = Sentence("Sorry, this bot is private.")
REMEMBERED_REFUSALS = 10_000
TELL_AGAIN_AFTER = 24 * 3600.0


class Admission:
    """Decides whether a message may be answered and hands admitted ones to the dispatcher.

    A refused user costs no model call and no stored turn; each refused chat or user is told
    so once a day, so a stranger cannot make the bot talk by writing repeatedly (and the
    memory of whom it told holds at most `REMEMBERED_REFUSALS` of them).
    """

    def __init__(
        self,
        *,
        identity: BotIdentity,
        access: AccessPolicy,
        dispatcher: TurnDispatcher,
        max_input_chars: int,
        media_wait: float = 0.0,
        speech_notice: SpeechNotice | None = None,
        journal: HeldJournal | None = None,
    ) -> None:
        self.identity = identity
        self.access = access
        self.dispatcher = dispatcher
        self.max_input_chars = max_input_chars
        self.journal = journal
        """Keeps what the gathering holds back in the store, through a crash."""
        self.gathering = TurnGatherer(
            self._gathered,
            follow_up_wait=media_wait,
            keeper=journal,
        )
        """Albums, and media waiting `media_wait` seconds for its question."""
        self.speech_notice = speech_notice
        self._told: BoundedDict[tuple[str, int], bool] = BoundedDict(
            REMEMBERED_REFUSALS, ttl=TELL_AGAIN_AFTER
        )

    def admit(self, message: Message) -> bool:
        """Allow-lists first: a refused user costs no model call and no stored turn."""
        user_id = message.from_user.id if message.from_user else None
        private = is_private(message)
        target = reply_target(message)
        if not self.access.chat_allowed(message.chat_id, private=private):
            self._tell_once("chat", message.chat_id, target, NOT_ENABLED)
            return False
        if not self.access.user_allowed(user_id, message.chat_id, private=private):
            if private and user_id is not None:
                self._tell_once("user", user_id, target, PRIVATE_BOT)
            return False
        return True

    async def take_left_over(self, bot: Bot, held_before: float) -> int:
        """Hand over the messages a process that is gone was holding back (held since
        before `held_before`, epoch seconds), each sender's as one turn, as they would have
        been; returns how many messages."""
        if self.journal is None:
            return 0
        messages = await self.journal.left_over(bot, held_before)
        for message in messages:
            self.gathering.add(message)  # gathered again, and kept again until stored
        for message in messages:
            self.gathering.release(message)  # its question, if any, came before the crash
        if messages:
            log.warning("handing over %d messages held back before a crash", len(messages))
        return len(messages)

    def _tell_once(self, kind: str, ident: int, target: ReplyTarget, text: str) -> None:
        if (kind, ident) in self._told:
            return
        self._told[(kind, ident)] = True
        self.dispatcher.tell(target, text)

    def take(self, message: Message, *, text_override: str | None = None) -> None:
        """Queue an addressed message as a turn (an album's parts, and media with the
        question that follows it, are gathered first)."""
        if text_override is None:
            self.gathering.add(message)
            return
        self.gathering.release(message)
        self._submit([message], text_override=text_override)

    def _gathered(self, messages: list[Message]) -> None:
        self._submit(messages)

    def read(self, message: Message, *, text_override: str | None = None) -> IncomingTurn:
        """The turn `message` stands for, read as an arriving one would be."""
        return turn_from_messages(
            [message],
            self.identity,
            max_input_chars=self.max_input_chars,
            text_override=text_override,
        )

    def _submit(self, messages: list[Message], *, text_override: str | None = None) -> None:
        turn = turn_from_messages(
            messages,
            self.identity,
            max_input_chars=self.max_input_chars,
            text_override=text_override,
        )
        self.submit_turn(turn, *messages)

    def submit_turn(self, turn: IncomingTurn, *speakers: Message) -> None:
        """Queue a read turn; `speakers` are the messages whose speech it carries, so the
        chat hears once when Phi-4 may mishear their language."""
        notice = self.speech_notice
        if notice is not None and any(notice.needed(m) for m in speakers):
            self.dispatcher.tasks.spawn(notice.tell(turn.target), name=f"speech-notice-{turn.key}")
        self.dispatcher.submit(turn)
