"""Typed access to the bot's services from every handler, in PTB's `ContextTypes` way."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.config import Settings
from bot.ops import OpsServer
from bot.telegram.metered_request import TelegramPulse
from bot.telegram.services import BotServices
from bot.telegram.streaming.pacing import RateBudget


class BotData:
    """`application.bot_data`: the settings from the start, the services once they run."""

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.services: BotServices | None = None
        self.pulse = TelegramPulse()
        self.budget: RateBudget | None = None  # set where the application is built
        self.ops: OpsServer | None = None  # the metrics and health port, when configured


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """The context handlers receive; `services` is there for every update handled."""

    @property
    def services(self) -> BotServices:
        services = self.bot_data.services
        if services is None:  # PTB handles updates only after post_init has run
            raise RuntimeError("an update arrived before the bot's services were started")
        return services


# The last parameter is the job queue's type; the bot runs no scheduled jobs.
BotApplication = Application[ExtBot[None], BotContext, dict[Any, Any], dict[Any, Any], BotData, Any]
CONTEXT_TYPES = ContextTypes(context=BotContext, bot_data=BotData)
