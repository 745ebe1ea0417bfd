"""The buttons under answers pressed: Stop, Regenerate and Continue, for whoever may."""

from __future__ import annotations

import logging
from functools import partial

from telegram import CallbackQuery, Message, Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler

from bot import metrics
from bot.conversation.errors import TurnRejected
from bot.conversation.prompt import CONTINUE_PROMPT
from bot.conversation.turns import IncomingTurn, ReplyTarget
from bot.shared import Sentence, translate
from bot.telegram.admission import PRIVATE_BOT
from bot.telegram.commands import is_chat_admin
from bot.telegram.context import BotContext
from bot.telegram.services import BotServices
from bot.telegram.streaming.replies import CONTINUE, REGENERATE, STOP
from bot.telegram.triggers import conversation_key, is_group, is_private
from storage import AnswerStatus

log = logging.getLogger(__name__)

ONLY_THE_ASKER = Sentence("Only the person who asked (or a group admin) can do that.")
NOT_BEING_WRITTEN = Sentence("This answer is no longer being written.")
NOT_THE_LATEST = Sentence("Only the newest answer can be written again.")
NOT_THE_LATEST_TO_CONTINUE = Sentence("Only the newest answer can be continued.")


async def on_button(update: Update, context: BotContext) -> None:
    """Carry out a press; every press is answered, with a short notice when it is refused."""
    query = update.callback_query
    if query is None:
        return
    metrics.count_update("button")
    notice: str | None = None
    try:
        notice = await _press(context.services, query)
    finally:
        try:
            await query.answer(translate(notice, query.from_user.language_code) if notice else None)
        except TelegramError as exc:
            log.info("a button press could not be answered: %s", exc)


async def _press(services: BotServices, query: CallbackQuery) -> str | None:
    message = query.message
    if not isinstance(message, Message) or not (is_private(message) or is_group(message)):
        return None  # too old for Telegram to say which message it was
    presser = query.from_user.id
    private = is_private(message)
    if not services.admission.access.user_allowed(presser, message.chat_id, private=private):
        return PRIVATE_BOT
    language = query.from_user.language_code
    target = ReplyTarget(conversation_key(message), is_group(message), language=language)
    if query.data == STOP:
        return await _stop(services, message, target, presser)
    if query.data == REGENERATE:
        return await _regenerate(services, message, target, presser)
    if query.data == CONTINUE:
        return await _continue(services, query, message, target)
    return None


async def _stop(
    services: BotServices, message: Message, target: ReplyTarget, presser: int
) -> str | None:
    """Stop the answer under which Stop was pressed, as /stop would."""
    written = services.pipeline.answer_being_written(target.key)
    if written is None or message.message_id not in written:
        return NOT_BEING_WRITTEN
    latest = await services.pipeline.latest_answer(target.key)
    asker = latest.sender_id if latest is not None else None
    if not await _may_press(services, message, presser, asker):
        return ONLY_THE_ASKER
    if not services.dispatcher.lanes.stop(target.key):
        return NOT_BEING_WRITTEN
    return None


async def _regenerate(
    services: BotServices, message: Message, target: ReplyTarget, presser: int
) -> str | None:
    """Answer the newest answer's question again, in its place, after the lane's work."""
    latest = await services.pipeline.latest_answer(target.key)
    if latest is None or message.message_id not in latest.message_ids:
        # An older answer whose button outlived a restart: it goes now.
        services.dispatcher.tasks.spawn(
            services.replies.remove_buttons(target, message.message_id),
            name=f"remove-buttons-{target.key.chat_id}",
        )
        return NOT_THE_LATEST
    if latest.status is AnswerStatus.STREAMING:
        return None  # it is being written again already
    if not await _may_press(services, message, presser, latest.sender_id):
        return ONLY_THE_ASKER
    dispatcher = services.dispatcher
    try:
        if not dispatcher.access.is_admin(presser):
            dispatcher.limiter.check(presser)
        job = partial(services.pipeline.regenerate, target, latest.answer_turn_id)
        dispatcher.lanes.submit(target.key, job, user_id=presser)
    except TurnRejected as problem:
        return problem.user_message
    return None


async def _continue(
    services: BotServices, query: CallbackQuery, message: Message, target: ReplyTarget
) -> str | None:
    """Ask the model for the rest of an answer its length limit cut, as a new message that
    replies to it. The request is stored as a turn keyed by the cut answer's message, so a
    second press of the same button is not answered twice."""
    presser = query.from_user.id
    latest = await services.pipeline.latest_answer(target.key)
    if latest is None or message.message_id not in latest.message_ids:
        services.dispatcher.tasks.spawn(
            services.replies.remove_buttons(target, message.message_id),
            name=f"remove-buttons-{target.key.chat_id}",
        )
        return NOT_THE_LATEST_TO_CONTINUE
    if latest.status is AnswerStatus.STREAMING:
        return None
    if not await _may_press(services, message, presser, latest.sender_id):
        return ONLY_THE_ASKER
    services.dispatcher.submit(
        IncomingTurn(
            target=target,
            text=CONTINUE_PROMPT,
            message_id=message.message_id,
            sender_id=presser,
            sender_name=query.from_user.full_name,
        )
    )
    return None


async def _may_press(
    services: BotServices, message: Message, presser: int, asker: int | None
) -> bool:
    """In private chats anyone there; in groups the person who asked, or a group admin."""
    if not is_group(message) or presser == asker:
        return True
    return await is_chat_admin(services, message.get_bot(), message.chat_id, presser)


BUTTON_HANDLER = CallbackQueryHandler(on_button)
