"""Guest updates: summons from chats the bot is not in, and presses under its guest answers."""

from __future__ import annotations

import logging
from functools import partial

from telegram import CallbackQuery, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot import metrics
from bot.conversation.errors import TurnRejected
from bot.conversation.turns import GuestPlace, ReplyTarget
from bot.shared import Sentence, translate
from bot.telegram.callbacks import NOT_BEING_WRITTEN, NOT_THE_LATEST
from bot.telegram.context import BotContext
from bot.telegram.services import BotServices
from bot.telegram.streaming import guest_codes as codes
from bot.telegram.streaming.guest_sink import message_number
from storage import AnswerStatus

log = logging.getLogger(__name__)

ONLY_THE_CALLER = Sentence("Only the person who asked can do that.")


async def on_guest(update: Update, context: BotContext) -> None:
    """A summon: read once and handed to the guest door."""
    message = update.guest_message
    if message is None or not message.guest_query_id or message.from_user is None:
        return
    metrics.count_update("guest")
    context.services.guests.take(message)


async def on_guest_button(update: Update, context: BotContext) -> None:
    """Stop or Regenerate under a guest answer; only its caller may press them."""
    query = update.callback_query
    if query is None or query.inline_message_id is None:
        return
    metrics.count_update("button")
    notice: str | None = None
    try:
        notice = await _press(context.services, query, query.inline_message_id)
    finally:
        try:
            await query.answer(translate(notice, query.from_user.language_code) if notice else None)
        except TelegramError as exc:
            log.info("a button press could not be answered: %s", exc)


async def _press(services: BotServices, query: CallbackQuery, inline_id: str) -> str | None:
    pressed = codes.read_button(query.data)
    if pressed is None:
        return None
    if query.from_user.id != pressed.caller_id:
        return ONLY_THE_CALLER
    key, number = pressed.key, message_number(inline_id)
    if pressed.action == codes.STOP:
        written = services.pipeline.answer_being_written(key)
        if written is not None and number not in written:
            return NOT_BEING_WRITTEN  # a newer answer is being written; this one is done
        if not await services.dispatcher.stop(key):
            return NOT_BEING_WRITTEN
        return None
    latest = await services.pipeline.latest_answer(key)
    if latest is None or number not in latest.message_ids:
        return NOT_THE_LATEST
    if latest.status is AnswerStatus.STREAMING:
        return None  # it is being written again already
    place = GuestPlace(pressed.chat_id, pressed.caller_id, inline_message_id=inline_id)
    target = ReplyTarget(key, True, language=query.from_user.language_code, guest=place)
    dispatcher = services.dispatcher
    try:
        if not dispatcher.access.is_admin(pressed.caller_id):
            dispatcher.limiter.check(pressed.caller_id)
        job = partial(services.pipeline.regenerate, target, latest.answer_turn_id)
        dispatcher.lanes.submit(key, job, user_id=pressed.caller_id)
    except TurnRejected as problem:
        return problem.user_message
    return None


GUEST_HANDLERS: list[BaseHandler[Update, BotContext, None]] = [
    MessageHandler(filters.UpdateType.GUEST_MESSAGE, on_guest),
    CallbackQueryHandler(on_guest_button, pattern=f"^{codes.PREFIX}"),
]
