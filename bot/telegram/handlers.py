"""Which updates matter: private messages, group messages addressed to the bot, migrations."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.ext import MessageHandler, filters

from bot import metrics
from bot.telegram.callbacks import BUTTON_HANDLER
from bot.telegram.commands import COMMAND_HANDLERS
from bot.telegram.context import BotApplication, BotContext
from bot.telegram.guest_handlers import GUEST_HANDLERS
from bot.telegram.triggers import (
    is_group,
    is_private,
    language_of,
    mentions_bot,
    replies_to_bot,
)

log = logging.getLogger(__name__)


async def on_message(update: Update, context: BotContext) -> None:
    """Every private message is a turn; in groups only a mention or a reply to the bot is."""
    message = update.message
    if message is None:
        return
    services = context.services
    if is_group(message):
        me = services.identity
        addressed = mentions_bot(message, me) or replies_to_bot(message, me)
        if not (addressed or services.admission.gathering.awaits(message)):
            metrics.count_update("ignored")
            return
    elif not is_private(message):
        metrics.count_update("ignored")
        return
    metrics.count_update(update_kind(message))
    if services.admission.admit(message):
        services.admission.take(message)


async def on_private_message(update: Update, context: BotContext) -> None:
    """Before anything else: an admin writing privately gets a notice that could not be
    sent before (a bot cannot write first). /start shows the backend's state instead."""
    message = update.message
    health = context.services.pipeline.health
    if message is None or message.from_user is None or health is None:
        return
    if message.from_user.id not in context.services.settings.admins:
        return
    if (message.text or "").split("@")[0].split(" ")[0].lower() == "/start":
        return
    health.admin_wrote(message.from_user.id, language_of(message))


async def before_command(update: Update, context: BotContext) -> None:
    """Media its sender left waiting for a question is taken before their command runs, so
    /new, /retry or /stop act on a conversation that already holds it."""
    if update.message is not None:
        context.services.admission.gathering.release(update.message)


async def on_edited(update: Update, context: BotContext) -> None:
    """An edited message: the turn stored from it is rewritten (and answered again when it
    is the newest question); a message the bot never took stays ignored."""
    message = update.edited_message
    if message is None or not (message.text or message.caption):
        return
    if not (is_private(message) or is_group(message)):
        return
    metrics.count_update("edited")
    text = message.text or message.caption or ""
    override = None
    if text.startswith("/"):
        command, _, rest = text.partition(" ")
        if command.split("@")[0].lower() != "/ask":
            return  # commands are carried out once, as sent
        override = rest.strip()
    services = context.services
    if services.admission.admit(message):
        services.dispatcher.revise(services.admission.read(message, text_override=override))


def update_kind(message: Message) -> metrics.UpdateKind:
    """What an addressed message holds, for `phi4bot_updates_total`."""
    if message.photo:
        return "photo"
    if message.voice:
        return "voice"
    if message.audio:
        return "audio"
    if message.video_note or message.video or message.animation:
        return "video"
    if message.sticker:
        return "sticker"
    if message.document:
        return "document"
    if message.text:
        return "text"
    return "other"


async def on_migration(update: Update, context: BotContext) -> None:
    """A group upgraded to a supergroup gets a new id; its conversation follows it."""
    message = update.message
    if message is None or message.migrate_to_chat_id is None:
        return
    await context.services.store.migrate_chat(message.chat_id, message.migrate_to_chat_id)
    log.info("chat %s moved to %s", message.chat_id, message.migrate_to_chat_id)


async def on_error(update: object, context: BotContext) -> None:
    """Log what escaped a handler; the process keeps running."""
    log.error("an update could not be handled: %s", context.error, exc_info=context.error)


def register_handlers(application: BotApplication) -> None:
    for handler in GUEST_HANDLERS:  # first: a summon is never taken for a command
        application.add_handler(handler)
    application.add_handler(
        MessageHandler(filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE, on_private_message),
        group=-2,  # its own group: in one group only the first matching handler runs
    )
    application.add_handler(
        MessageHandler(filters.UpdateType.MESSAGE & filters.COMMAND, before_command), group=-1
    )
    for handler in COMMAND_HANDLERS:
        application.add_handler(handler)
    application.add_handler(BUTTON_HANDLER)
    application.add_handler(
        MessageHandler(filters.StatusUpdate.MIGRATE & filters.UpdateType.MESSAGE, on_migration)
    )
    application.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE & ~filters.COMMAND & ~filters.StatusUpdate.ALL, on_message
        )
    )
    application.add_handler(
        MessageHandler(filters.UpdateType.EDITED_MESSAGE & ~filters.StatusUpdate.ALL, on_edited)
    )
    application.add_error_handler(on_error)
