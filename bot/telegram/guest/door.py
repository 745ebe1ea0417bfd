"""The door for guest summons: the caller's access, then the dispatcher, like any turn."""

from __future__ import annotations

from telegram import Message

from bot.conversation.access import AccessPolicy
from bot.conversation.dispatcher import TurnDispatcher
from bot.telegram.admission import PRIVATE_BOT
from bot.telegram.guest.reading import guest_turn
from bot.telegram.triggers import BotIdentity


class GuestDoor:
    """Admits summons from chats the bot is not a member of.

    Access rules apply to the caller: `PHI4BOT_ALLOWED_USERS` (the chat is not the bot's to
    allow), then the per-user rate, the queue and the daily quota as for every turn. A
    refused caller's summon is answered with one short guest message saying so; nothing is
    stored and the model is not asked. Each summon is answered, since a summon that gets
    no answer looks to the caller like a bot that hangs.
    """

    def __init__(
        self,
        *,
        identity: BotIdentity,
        access: AccessPolicy,
        dispatcher: TurnDispatcher,
        max_input_chars: int,
    ) -> None:
        self.identity = identity
        self.access = access
        self.dispatcher = dispatcher
        self.max_input_chars = max_input_chars

    def take(self, message: Message) -> None:
        """Queue a summon as a turn of its caller's guest conversation, or refuse it."""
        turn = guest_turn(message, self.identity, max_input_chars=self.max_input_chars)
        if not self.access.user_allowed(turn.sender_id, message.chat_id, private=True):
            self.dispatcher.tell(turn.target, PRIVATE_BOT)
            return
        self.dispatcher.submit(turn)
