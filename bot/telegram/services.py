"""The services of one running bot, built once at start-up and reached through the context."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.config import Settings
from bot.conversation.dispatcher import TurnDispatcher
from bot.conversation.pipeline import TurnPipeline
from bot.loop_lag import LoopLagMonitor
from bot.phi4 import Backend
from bot.telegram.admission import Admission
from bot.telegram.guest.door import GuestDoor
from bot.telegram.instances import Peers
from bot.telegram.streaming.pacing import RateBudget
from bot.telegram.streaming.replies import TelegramReplies
from bot.telegram.triggers import BotIdentity
from storage import Store


@dataclass(frozen=True, slots=True)
class BotServices:
    """Everything a handler needs; built in `bot.telegram.app` once the bot knows who it is."""

    settings: Settings
    identity: BotIdentity
    store: Store
    backend: Backend
    budget: RateBudget
    replies: TelegramReplies
    dispatcher: TurnDispatcher
    admission: Admission
    guests: GuestDoor
    loop_lag: LoopLagMonitor = field(default_factory=LoopLagMonitor)
    peers: Peers | None = None  # set when other processes share the database

    @property
    def pipeline(self) -> TurnPipeline:
        return self.dispatcher.pipeline
