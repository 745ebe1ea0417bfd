"""Builds the python-telegram-bot `Application` and owns the lifetime of the bot's services."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from urllib.parse import urlparse

from telegram import Bot, Update
from telegram.ext import ApplicationBuilder

from bot import metrics
from bot.config import Settings
from bot.conversation.access import AccessPolicy, UserRateLimiter
from bot.conversation.checkpoints import CheckpointWriter
from bot.conversation.dispatcher import TurnDispatcher
from bot.conversation.health import BackendHealth
from bot.conversation.lanes import ConversationLanes
from bot.conversation.notices import Notices
from bot.conversation.pipeline import TurnPipeline
from bot.conversation.recorder import TurnRecorder
from bot.conversation.recovery import resume_unfinished
from bot.conversation.retention import RetentionSweeper
from bot.conversation.sharing import SharedAnswering
from bot.conversation.turns import GuestPlace, guest_message_setting
from bot.logs import RedactingFormatter
from bot.ops import OpsServer, Readiness
from bot.phi4 import Backend, create_backend
from bot.phi4.instrumented import instrument
from bot.shared.i18n import languages
from bot.shared.tasks import TaskSupervisor
from bot.telegram.admission import Admission
from bot.telegram.commands import menu
from bot.telegram.context import CONTEXT_TYPES, BotApplication
from bot.telegram.downloads import MediaFetcher
from bot.telegram.guest.door import GuestDoor
from bot.telegram.handlers import register_handlers
from bot.telegram.held_journal import HELD_GRACE, HeldJournal
from bot.telegram.instances import LeaderUpdater, Peers
from bot.telegram.metered_request import MeteredRequest, TelegramPulse
from bot.telegram.polling_request import PollingRequest
from bot.telegram.preparation import MediaLimits
from bot.telegram.refusal import run_refusing_tokens
from bot.telegram.services import BotServices
from bot.telegram.speech_notice import SpeechNotice
from bot.telegram.streaming.limiter import BudgetRateLimiter
from bot.telegram.streaming.pacing import RateBudget
from bot.telegram.streaming.replies import TelegramReplies
from bot.telegram.triggers import BotIdentity
from storage import Store, open_store

log = logging.getLogger(__name__)


def build_application(settings: Settings) -> BotApplication:
    """The PTB application, pointed at `TELEGRAM_API_URL`, with our services wired in.

    Every Bot API request it sends passes the one `RateBudget` (its rate limiter), which
    the services started in `post_init` share.
    """
    assert settings.telegram_bot_token is not None
    if settings.metrics_port is None:
        metrics.stop_recording()  # nobody can read them: spend nothing on them
    api = settings.telegram_api_url
    pulse = TelegramPulse()
    budget = RateBudget(bot_rate=settings.bot_rate)
    requests = MeteredRequest(
        pulse,
        connection_pool_size=64,
        connect_timeout=10.0,
        read_timeout=30.0,
        write_timeout=30.0,
        pool_timeout=30.0,
    )
    application: BotApplication = (
        ApplicationBuilder()
        .context_types(CONTEXT_TYPES)
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .concurrent_updates(True)
        .request(requests)
        .get_updates_request(PollingRequest(pulse, connection_pool_size=1, read_timeout=45.0))
        .rate_limiter(BudgetRateLimiter(budget))
        .post_init(_start_services)
        .post_stop(_stop_answers)
        .post_shutdown(_close_services)
        .build()
    )
    application.bot_data.settings = settings
    application.bot_data.pulse = pulse
    application.bot_data.budget = budget
    application.updater = LeaderUpdater(application.bot, application.update_queue)
    register_handlers(application)
    return application


async def _start_services(application: BotApplication) -> None:
    settings = application.bot_data.settings
    assert settings is not None
    measured = settings.metrics_port is not None  # unread metrics cost nothing
    store = await open_store(
        settings.database_url,
        max_attachment_bytes=settings.max_attachment_bytes,
        instance_id=settings.instance_id,
        observer=metrics.observe_database if measured else None,
    )
    backend = create_backend(settings)
    if measured:
        backend = instrument(backend)
    coordination = store.coordination()
    me = application.bot
    identity = BotIdentity(me.id, me.username)
    if me.bot.supports_guest_queries is False:
        log.info("guest mode is off for @%s (BotFather): no summons from other chats", me.username)
    budget = application.bot_data.budget
    assert budget is not None
    metrics.watch_budget(
        penalty_seconds=budget.penalty_remaining,
        used=budget.window_used,
        limit=budget.window_cap,
    )
    lanes = ConversationLanes()

    async def remember_guest(place: GuestPlace, inline_message_id: str) -> None:
        setting = guest_message_setting(place.caller_id)
        await store.set_setting(place.chat_id, setting, inline_message_id)

    tasks = TaskSupervisor()
    replies = TelegramReplies(
        application.bot,
        budget,
        tasks=tasks,
        edit_interval=settings.edit_interval,
        group_edit_interval=settings.group_edit_interval,
        private_streaming=settings.private_streaming,
        remember_guest=remember_guest,
    )
    health = BackendHealth(
        backend=backend, replies=replies, settings=settings, tasks=tasks, settings_store=store
    )
    pipeline = TurnPipeline(
        replies=replies,
        settings=settings,
        store=store,
        backend=backend,
        lanes=lanes,
        checkpoints=CheckpointWriter(store),
        tasks=tasks,
        health=health,
    )
    recorder = TurnRecorder(
        store,
        MediaFetcher(
            application.bot,
            max_bytes=settings.max_attachment_bytes,
            limits=MediaLimits(
                max_audio_seconds=settings.max_audio_seconds,
                max_video_seconds=settings.max_video_seconds,
                max_document_chars=settings.max_document_chars,
                max_pdf_pages=settings.max_pdf_pages if "image" in backend.accepts else 0,
                sound="audio" in backend.accepts,
                image_max_side=settings.image_max_side,
            ),
            decode_concurrency=settings.decode_concurrency,
        ),
        backend.accepts,
        daily_quota=settings.user_daily_quota,
        refuse=lambda turn, problem: pipeline.say(
            turn.target.replying_to(turn.message_id), problem.user_message
        ),
        tasks=tasks,
        retry=pipeline.store_retry,
        # Shared: a sender's waiting turns may be in any process; only the database counts them.
        waiting_cap=(lanes.max_queued_per_user or None) if coordination.shared else None,
    )
    access = AccessPolicy.from_settings(settings)
    notices = Notices(pipeline.say, tasks)
    shared, peers = None, None
    if coordination.shared:
        shared = SharedAnswering(
            coordination=coordination, lanes=lanes, pipeline=pipeline, tell=notices.tell
        )
        peers = Peers(coordination, shared, budget, application.updater, tasks)
    dispatcher = TurnDispatcher(
        pipeline=pipeline,
        lanes=lanes,
        recorder=recorder,
        access=access,
        limiter=UserRateLimiter(settings.user_rate_per_minute),
        notices=notices,
        tasks=tasks,
        shared=shared,
    )
    application.bot_data.services = BotServices(
        settings=settings,
        identity=identity,
        store=store,
        backend=backend,
        budget=budget,
        replies=replies,
        dispatcher=dispatcher,
        admission=Admission(
            identity=identity,
            access=access,
            dispatcher=dispatcher,
            max_input_chars=settings.max_input_chars,
            media_wait=settings.media_wait,
            speech_notice=SpeechNotice(store, pipeline.say),
            journal=HeldJournal(store, recorder),
        ),
        guests=GuestDoor(
            identity=identity,
            access=access,
            dispatcher=dispatcher,
            max_input_chars=settings.max_input_chars,
        ),
        peers=peers,
    )
    application.bot_data.services.loop_lag.start()
    pipeline.checkpoints.start()
    gc.freeze()  # what start-up built lives as long as the bot: no collection need scan it
    await application.bot.set_my_commands(menu(None))
    for language in languages()[1:]:
        await application.bot.set_my_commands(menu(language), language_code=language)
    await _start_ops(application, store=store, backend=backend)
    log.info("@%s is up, backend %s", identity.username, backend.name)
    health.start()  # in the background: updates are taken meanwhile
    RetentionSweeper(
        store, conversation_days=settings.retention_days, media_days=settings.media_retention_days
    ).start(tasks)  # a minute from now, then hourly; off unless a setting asks for it
    admission = application.bot_data.services.admission
    if peers is not None:
        await peers.start()  # answers what others left, as they would
        log.info("instance %s shares the database with any others", coordination.instance_id)
        # What others hold now is theirs; what was held before this start and is still
        # there once any holding has ended is a gone process's.
        started, grace = time.time(), settings.media_wait + HELD_GRACE
        tasks.spawn(
            _take_left_over_later(admission, application.bot, started, grace),
            name="held-left-over",
            cancel_at_shutdown=True,
        )
        return
    await admission.take_left_over(application.bot, time.time())
    resume_unfinished(dispatcher, await store.unfinished_answers())


async def _take_left_over_later(
    admission: Admission, bot: Bot, held_before: float, after: float
) -> None:
    await asyncio.sleep(after)
    await admission.take_left_over(bot, held_before)


async def _start_ops(application: BotApplication, *, store: Store, backend: Backend) -> None:
    """Serve /metrics, /healthz and /readyz when `PHI4BOT_METRICS_PORT` is set."""
    settings = application.bot_data.settings
    assert settings is not None
    if settings.metrics_port is None:
        return
    pulse = application.bot_data.pulse
    readiness = Readiness(
        store=store,
        backend=backend,
        telegram_answered_at=lambda: pulse.answered_at,
        ask_telegram=application.bot.get_me,
        redact=RedactingFormatter(settings.secrets()).redact,
    )
    server = OpsServer(settings.metrics_host, settings.metrics_port, readiness)
    await server.start()
    application.bot_data.ops = server


async def _stop_answers(application: BotApplication) -> None:
    """On SIGTERM/SIGINT, against one deadline (`PHI4BOT_SHUTDOWN_SECONDS`): stop every
    answer being streamed, store each one's text so far at once, then give the answers'
    last edits, the turns still being stored and the background work until the deadline."""
    services = application.bot_data.services
    if services is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + services.settings.shutdown_seconds
    services.admission.gathering.flush_all()  # what still gathers becomes a stored turn
    dispatcher = services.dispatcher
    dispatcher.lanes.close()
    await services.pipeline.checkpoints.flush()
    if services.peers is not None:
        await services.peers.stop()
    # The background work includes the turns still being stored (`TurnRecorder`).
    await asyncio.gather(dispatcher.lanes.drain(deadline), dispatcher.tasks.drain(deadline))
    await dispatcher.tasks.drain(deadline)  # whatever the last answers spawned
    dispatcher.recorder.report_given_up()
    left = deadline - loop.time()
    log.info("shutdown work ended with %.1f s of its deadline left", max(0.0, left))


async def _close_services(application: BotApplication) -> None:
    services = application.bot_data.services
    if services is None:
        return
    if application.bot_data.ops is not None:
        await application.bot_data.ops.stop()
        application.bot_data.ops = None
    await services.loop_lag.stop()
    await services.backend.aclose()
    if services.peers is not None:
        await services.peers.close()
    await services.pipeline.checkpoints.close()  # the answers are stopped by now
    await services.store.close()
    log.info("stopped cleanly")


def use_uvloop(wanted: bool) -> bool:
    """Run the bot on uvloop where it is installed, unless `PHI4BOT_UVLOOP=0`.

    The bot behaves the same either way; with 200 answers streaming, uvloop's cheaper
    wake-ups cut the bot's CPU by 5-10 % (bench/streaming.py --shape vllm).
    """
    if not wanted:
        return False
    try:
        import uvloop  # optional: not every platform has it
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def raise_open_files_limit(wanted: int = 65536) -> None:
    """Every streaming answer holds a socket: lift the soft limit on open files (often 1024)
    as far as the hard limit allows."""
    try:
        import resource  # not on Windows
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.debug("could not raise the open-files limit: %s", exc)


def run_bot(settings: Settings, *, webhook_url: str | None, listen: str, port: int) -> None:
    """Long-poll by default; behind a webhook when `webhook_url` is given (the settings then
    hold the webhook secret: `with_webhook_secret`). Raises `TokenRefused`."""
    raise_open_files_limit()
    log.info("event loop: %s", "uvloop" if use_uvloop(settings.uvloop) else "asyncio")
    application = build_application(settings)
    updates = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY, Update.GUEST_MESSAGE]

    def polling() -> None:
        application.run_polling(
            allowed_updates=updates, timeout=30, bootstrap_retries=-1, close_loop=False
        )

    def webhook() -> None:
        assert webhook_url is not None and settings.webhook_secret is not None
        application.run_webhook(
            listen=listen,
            port=port,
            url_path=urlparse(webhook_url).path.lstrip("/"),
            webhook_url=webhook_url,
            secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=updates,
            bootstrap_retries=-1,
            close_loop=False,
        )

    run_refusing_tokens(
        application,
        polling if webhook_url is None else webhook,
        refused_status=lambda: application.bot_data.pulse.refused,
        api_url=settings.telegram_api_url,
    )
