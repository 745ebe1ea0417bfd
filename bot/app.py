"""Builds the python-telegram-bot `Application` and owns the lifetime of the bot's services."""

from __future__ import annotations

import logging
import secrets
from functools import partial
from urllib.parse import urlparse

from telegram import Update
from telegram.ext import Application, ApplicationBuilder

from bot.access import AccessPolicy, UserRateLimiter
from bot.arrivals import TurnArrivals
from bot.commands import MENU
from bot.config import Settings
from bot.handlers import register_handlers
from bot.lanes import ConversationLanes
from bot.pacing import RateBudget
from bot.phi4 import create_backend
from bot.pipeline import TurnPipeline
from bot.services import SERVICES_KEY, BotServices
from bot.telegram_media import MediaFetcher
from bot.triggers import BotIdentity
from storage import ConversationKey, PendingAnswer, open_store

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0
RESTART_NOTICE = (
    "⚠️ I was restarted before I finished this answer. Send /retry for a full answer "
    "(or, if you have written since, send that question again)."
)


def build_application(settings: Settings) -> Application:  # type: ignore[type-arg]
    """The PTB application, pointed at `TELEGRAM_API_URL`, with our services wired in."""
    assert settings.telegram_bot_token is not None
    api = settings.telegram_api_url
    application = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .concurrent_updates(True)
        .connect_timeout(10.0)
        .read_timeout(30.0)
        .write_timeout(30.0)
        .pool_timeout(30.0)
        .connection_pool_size(64)
        .get_updates_read_timeout(45.0)
        .post_init(_start_services)
        .post_stop(_stop_answers)
        .post_shutdown(_close_services)
        .build()
    )
    application.bot_data["settings"] = settings
    register_handlers(application)
    return application


async def _start_services(application: Application) -> None:  # type: ignore[type-arg]
    settings: Settings = application.bot_data["settings"]
    store = await open_store(
        settings.database_url, max_attachment_bytes=settings.max_attachment_bytes
    )
    backend = create_backend(settings)
    me = application.bot
    identity = BotIdentity(me.id, me.username)
    lanes = ConversationLanes()
    pipeline = TurnPipeline(
        bot=application.bot,
        settings=settings,
        store=store,
        backend=backend,
        budget=RateBudget(bot_rate=settings.bot_rate),
        lanes=lanes,
    )
    arrivals = TurnArrivals(
        store,
        MediaFetcher(
            application.bot,
            max_bytes=settings.max_attachment_bytes,
            max_audio_seconds=settings.max_audio_seconds,
        ),
        backend.accepts,
        daily_quota=settings.user_daily_quota,
        refuse=lambda turn, problem: pipeline.say(
            turn.key, problem.user_message, turn.is_group, reply_to=turn.message_id
        ),
    )
    services = BotServices(
        settings=settings,
        identity=identity,
        pipeline=pipeline,
        lanes=lanes,
        access=AccessPolicy.from_settings(settings),
        limiter=UserRateLimiter(settings.user_rate_per_minute),
        arrivals=arrivals,
    )
    application.bot_data[SERVICES_KEY] = services
    await application.bot.set_my_commands(MENU)
    log.info("@%s is up, backend %s", identity.username, backend.name)
    await _recover(services, await store.unfinished_answers())


async def _recover(services: BotServices, found: list[PendingAnswer]) -> None:
    """What a dead process left: turns still waiting for an answer are answered now (they
    never started, so they cannot be what brought the process down); answers cut off
    mid-way get a notice instead, and `/retry` answers them if the user wants."""
    pipeline = services.pipeline
    for pending in sorted(found, key=lambda p: p.user_turn_id):
        if pending.assistant_turn_id is None and pending.conversation_id is not None:
            job = partial(
                pipeline.answer,
                pending.key,
                pending.conversation_id,
                pending.user_turn_id,
                pending.key.chat_id < 0,
                pending.user_message_id,
            )
            services.lanes.submit(pending.key, job)
    cut = [p for p in found if p.assistant_turn_id is not None]
    for key, pending in _by_conversation(cut).items():
        notice = _restart_notice(pending)
        services.spawn(pipeline.say(key, notice, key.chat_id < 0, reply_to=_notice_target(pending)))


def _by_conversation(found: list[PendingAnswer]) -> dict[ConversationKey, list[PendingAnswer]]:
    grouped: dict[ConversationKey, list[PendingAnswer]] = {}
    for pending in sorted(found, key=lambda p: p.user_turn_id):
        grouped.setdefault(pending.key, []).append(pending)
    return grouped


def _restart_notice(pending: list[PendingAnswer]) -> str:
    """One message per conversation, however many of its turns the restart left open."""
    if len(pending) == 1:
        return RESTART_NOTICE
    return (
        f"⚠️ I was restarted before I finished {len(pending)} answers here. "
        "Send /retry for the last one, and send the other questions again."
    )


def _notice_target(pending: list[PendingAnswer]) -> int | None:
    """Reply to the newest cut-off answer's message, or else to the question it answered."""
    latest = pending[-1]
    if latest.reply_message_ids:
        return latest.reply_message_ids[-1]
    return latest.user_message_id


async def _stop_answers(application: Application) -> None:  # type: ignore[type-arg]
    """On SIGTERM/SIGINT: answers being streamed end as "stopped" and are recorded so."""
    services: BotServices | None = application.bot_data.get(SERVICES_KEY)
    if services is None:
        return
    services.albums.flush_all()  # parts of an album still gathering become a stored turn
    await services.arrivals.drain(SHUTDOWN_GRACE)
    await services.lanes.shutdown(SHUTDOWN_GRACE)
    await services.drain(SHUTDOWN_GRACE)


async def _close_services(application: Application) -> None:  # type: ignore[type-arg]
    services: BotServices | None = application.bot_data.get(SERVICES_KEY)
    if services is None:
        return
    await services.pipeline.backend.aclose()
    await services.pipeline.store.close()
    log.info("stopped cleanly")


def run_bot(settings: Settings, *, webhook_url: str | None, listen: str, port: int) -> None:
    """Long-poll by default; behind a webhook when `webhook_url` is given."""
    application = build_application(settings)
    updates = [Update.MESSAGE, Update.EDITED_MESSAGE]
    if webhook_url is None:
        application.run_polling(allowed_updates=updates, timeout=30, bootstrap_retries=-1)
        return
    secret = (
        settings.webhook_secret.get_secret_value()
        if settings.webhook_secret
        else secrets.token_urlsafe(32)
    )
    application.run_webhook(
        listen=listen,
        port=port,
        url_path=urlparse(webhook_url).path.lstrip("/"),
        webhook_url=webhook_url,
        secret_token=secret,
        allowed_updates=updates,
        bootstrap_retries=-1,
    )
