"""The bot's commands, for everyone (/start /help /new /stop /retry /system /ask) and admins."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import Bot, BotCommand, ChatMember, Message, Update
from telegram.error import Forbidden, TelegramError
from telegram.ext import CommandHandler

from bot import metrics
from bot.conversation.errors import TurnRejected
from bot.conversation.prompt import CONTINUE_PROMPT, ChatSetting
from bot.conversation.turns import ReplyTarget
from bot.shared import Sentence, translate
from bot.shared.i18n import N_
from bot.telegram.context import BotContext
from bot.telegram.services import BotServices
from bot.telegram.speech_commands import SPEECH_HANDLERS, SPEECH_MENU
from bot.telegram.streaming.guest_codes import read_whole_answer
from bot.telegram.streaming.pacing import Priority
from bot.telegram.triggers import (
    conversation_key,
    is_group,
    is_private,
    language_of,
    reply_target,
)
from bot.telegram.whole_answer import show_whole_answer
from storage import ConversationKey

log = logging.getLogger(__name__)

ONLY_THE_ASKER = Sentence("Only the person who asked (or a group admin) can do that.")
SENT_PRIVATELY = Sentence("I sent it to you in our private chat.")
OPEN_PRIVATE_CHAT = Sentence(
    "Admin answers go to our private chat: open it, press Start, then ask again."
)
HELP = Sentence(
    "I am Phi-4-multimodal, a small model from Microsoft that reads text, PDFs and text "
    "files, looks at photos, videos and stickers, and listens to voice notes (and to the "
    "sound of videos). Send me any of these and I answer; I remember this chat "
    "until you start over.\n\n"
    "/new — start a fresh conversation\n"
    "/stop — stop the answer being written\n"
    "/retry — answer your last message again\n"
    "/system <text> — set how I should behave in this chat (`/system` shows it, "
    "`/system reset` restores the default)\n"
    "/ask <question> — ask in a group without mentioning me\n"
    "/transcribe — reply with it to a voice note, audio or video: I write down what is said\n"
    "/translate <language> — reply with it to a voice note or text: I translate it\n"
    "/help — this message\n\n"
    "Under an answer being written, ⏹ Stop stops it; under the newest answer, "
    "🔄 Regenerate writes it again. Edit your last message and I answer it anew."
)
GROUP_HINT = N_("In groups, mention me (@{username}) or reply to one of my messages.")

MENU = [
    ("new", Sentence("Start a fresh conversation")),
    ("stop", Sentence("Stop the answer being written")),
    ("retry", Sentence("Answer the last message again")),
    ("system", Sentence("Show or set the system prompt")),
    ("ask", Sentence("Ask a question (in groups)")),
    ("continue", Sentence("Continue the last answer")),
    *SPEECH_MENU,
    ("help", Sentence("What I can do")),
]
NOTHING_TO_CONTINUE = Sentence("There is no answer to continue yet.")
NEW_CONVERSATION = Sentence("🆕 New conversation. I have forgotten what we said before.")
SYSTEM_PROMPT_IS = N_("The system prompt here is:\n\n{prompt}")
SYSTEM_PROMPT_RESET = Sentence("The system prompt is back to the default.")
SYSTEM_PROMPT_TOO_LONG = Sentence("That system prompt is too long.")
SYSTEM_PROMPT_SET = Sentence("✅ System prompt set for this chat.")
ADMINS_ONLY = N_("Only group admins can use /{command} here.")
NOTHING_TO_STOP = Sentence("There is no answer to stop.")
ASK_USAGE = Sentence("Usage: /ask <question>")
EXPORT_USAGE = Sentence("Usage: /export [chat_id [topic_id]]")
NO_CONVERSATIONS = Sentence("No conversations yet.")
STATS_COLUMNS = Sentence("chat · conversations · user turns · answers · failed · last")


def menu(language: str | None) -> list[BotCommand]:
    """The command menu (`setMyCommands`) with descriptions in `language`."""
    return [BotCommand(name, translate(about, language)) for name, about in MENU]


Command = Callable[[BotServices, Message, list[str]], Awaitable[None]]


def _admitted(update: Update, context: BotContext) -> tuple[BotServices, Message] | None:
    message = update.message
    if message is None:
        return None
    metrics.count_update("command")
    services = context.services
    if not services.admission.admit(message):
        return None
    return services, message


async def _is_chat_admin(services: BotServices, message: Message) -> bool:
    """Group admins (and the bot's own admins) may use the commands listed as admin-only."""
    user = message.from_user
    if message.sender_chat is not None and message.sender_chat.id == message.chat_id:
        return True  # an anonymous admin posting as the group
    if user is None:
        return False
    return await is_chat_admin(services, message.get_bot(), message.chat_id, user.id)


async def is_chat_admin(services: BotServices, bot: Bot, chat_id: int, user_id: int) -> bool:
    """Whether `user_id` administers the group (or is one of the bot's own admins)."""
    if services.admission.access.is_admin(user_id):
        return True
    try:
        member = await bot.get_chat_member(chat_id, user_id)
    except TelegramError as exc:
        log.warning("could not check admin rights in chat %s: %s", chat_id, exc)
        return False
    return member.status in (ChatMember.OWNER, ChatMember.ADMINISTRATOR)


def _say(services: BotServices, message: Message, text: str) -> Coroutine[Any, Any, list[int]]:
    return services.pipeline.say(reply_target(message), text)


async def cmd_start(services: BotServices, message: Message, args: list[str]) -> None:
    """What the bot does (an admin also reads whether the model server answers right now),
    or the whole of a guest answer its "read it all" link asks for."""
    wanted = read_whole_answer(args[0]) if args and is_private(message) else None
    if wanted is not None:
        await show_whole_answer(services, message, wanted)
        return
    await cmd_help(services, message, args)
    health = services.pipeline.health
    user_id = message.from_user.id if message.from_user else None
    if health is not None and user_id in services.settings.admins and is_private(message):
        state = await health.state_for_admin(user_id, language_of(message))
        await _say(services, message, state)


async def cmd_help(services: BotServices, message: Message, args: list[str]) -> None:
    language = language_of(message)
    text = translate(HELP, language)
    if is_group(message):
        hint = Sentence(GROUP_HINT, username=services.identity.username)
        text += "\n\n" + translate(hint, language)
    await _say(services, message, text)


async def cmd_new(services: BotServices, message: Message, args: list[str]) -> None:
    await services.store.new_conversation(conversation_key(message))
    await _say(services, message, NEW_CONVERSATION)


async def may_act_on_latest(services: BotServices, message: Message) -> bool:
    """`/stop` and `/retry` act on the newest answer: in a group, as with its buttons, only
    the person who asked it or a group admin may."""
    if not is_group(message):
        return True
    user_id = message.from_user.id if message.from_user else None
    if user_id is None:
        return False
    latest = await services.pipeline.latest_answer(conversation_key(message))
    if latest is None or latest.sender_id in (None, user_id):
        return True
    return await is_chat_admin(services, message.get_bot(), message.chat_id, user_id)


async def cmd_retry(services: BotServices, message: Message, args: list[str]) -> None:
    if not await may_act_on_latest(services, message):
        await _say(services, message, ONLY_THE_ASKER)
        return
    await services.pipeline.retry(reply_target(message))


async def cmd_system(services: BotServices, message: Message, args: list[str]) -> None:
    store = services.store
    text = (message.text or "").partition(" ")[2].strip()
    if not text:
        current = await services.pipeline.system_prompt(message.chat_id)
        await _say(services, message, Sentence(SYSTEM_PROMPT_IS, prompt=current))
        return
    if text.lower() in ("reset", "default"):
        await store.set_setting(message.chat_id, ChatSetting.SYSTEM_PROMPT, None)
        await _say(services, message, SYSTEM_PROMPT_RESET)
        return
    if len(text) > services.settings.max_input_chars:
        await _say(services, message, SYSTEM_PROMPT_TOO_LONG)
        return
    await store.set_setting(message.chat_id, ChatSetting.SYSTEM_PROMPT, text)
    await _say(services, message, SYSTEM_PROMPT_SET)


def _admins_own_chat(message: Message) -> ReplyTarget:
    """Where an admin command answers: the admin's private chat, so that one chat's data never
    lands in another group (`/export <chat>` or `/stats` sent in a group)."""
    if not is_group(message) or message.from_user is None:
        return reply_target(message)
    own = ConversationKey(message.from_user.id, None)
    return ReplyTarget(own, is_group=False, language=language_of(message))


async def _tell_where_it_went(services: BotServices, message: Message, delivered: bool) -> None:
    if is_group(message):
        await _say(services, message, SENT_PRIVATELY if delivered else OPEN_PRIVATE_CHAT)


async def cmd_stats(services: BotServices, message: Message, args: list[str]) -> None:
    target = _admins_own_chat(message)
    rows = await services.store.chat_stats()
    if not rows:
        delivered = bool(await services.pipeline.say(target, NO_CONVERSATIONS))
        await _tell_where_it_went(services, message, delivered)
        return
    lines = [translate(STATS_COLUMNS, target.language)]
    for row in rows[:50]:
        last = row.last_activity.strftime("%Y-%m-%d %H:%M") if row.last_activity else "—"
        lines.append(
            f"{row.chat_id} · {row.conversations} · {row.user_turns} · "
            f"{row.assistant_turns} · {row.failed_turns} · {last}"
        )
    table = "```\n" + "\n".join(lines) + "\n```"
    delivered = bool(await services.pipeline.say(target, table))
    await _tell_where_it_went(services, message, delivered)


async def cmd_export(services: BotServices, message: Message, args: list[str]) -> None:
    key = conversation_key(message)
    if args:
        try:
            key = type(key)(int(args[0]), int(args[1]) if len(args) > 1 else None)
        except ValueError:
            await _say(services, message, EXPORT_USAGE)
            return
    store = services.store
    conversation_id = await store.current_conversation(key)
    document = await store.export_conversation(conversation_id)
    payload = json.dumps(document, ensure_ascii=False, indent=2).encode()
    target = _admins_own_chat(message)
    delivered = True
    async with services.budget.slot(
        target.key.chat_id, is_group=target.is_group, priority=Priority.FIRST
    ):
        try:
            await message.get_bot().send_document(
                target.key.chat_id,
                payload,
                filename=f"conversation-{key.chat_id}.json",
                reply_to_message_id=None if is_group(message) else message.message_id,
            )
        except Forbidden:  # the admin never opened a private chat with the bot
            delivered = False
    await _tell_where_it_went(services, message, delivered)


def _lane_command(
    name: str, run: Command, *, admin_only_for_bot: bool = False, on_arrival: bool = False
) -> CommandHandler[BotContext, None]:
    """A command that runs in the conversation's lane, after the turns sent before it.

    `on_arrival` commands (/new) run as soon as the messages before them are stored, without
    waiting for answers: every later message then belongs to the new conversation.
    """

    async def handler(update: Update, context: BotContext) -> None:
        admitted = _admitted(update, context)
        if admitted is None:
            return
        services, message = admitted
        user_id = message.from_user.id if message.from_user else None
        if admin_only_for_bot and not services.admission.access.is_admin(user_id):
            return  # admin commands do not exist for everyone else
        args = list(context.args or [])

        async def job() -> None:
            if not await services.store.claim_command(message.chat_id, message.message_id):
                log.info("/%s in chat %s was carried out before", name, message.chat_id)
                return
            needs_admin = is_group(message) and name in services.settings.group_admin_only
            if needs_admin and not await _is_chat_admin(services, message):
                await _say(services, message, Sentence(ADMINS_ONLY, command=name))
                return
            await run(services, message, args)

        key = conversation_key(message)
        if on_arrival:
            services.dispatcher.recorder.in_order(key, job, name=f"command-{name}-{key}")
            return
        try:
            services.dispatcher.lanes.submit(key, job)
        except TurnRejected as problem:
            services.dispatcher.tell(reply_target(message), problem.user_message)

    handler.__doc__ = run.__doc__
    return CommandHandler(name, handler)


async def on_stop(update: Update, context: BotContext) -> None:
    """Stop at once, without waiting in the lane behind the answer it stops."""
    admitted = _admitted(update, context)
    if admitted is None:
        return
    services, message = admitted
    if not await services.store.claim_command(message.chat_id, message.message_id):
        return  # delivered again after a restart: the answer it stopped is long gone
    if not await may_act_on_latest(services, message):
        services.dispatcher.tell(reply_target(message), ONLY_THE_ASKER)
        return
    if not await services.dispatcher.stop(conversation_key(message)):
        services.dispatcher.tell(reply_target(message), NOTHING_TO_STOP)


async def on_ask(update: Update, context: BotContext) -> None:
    """`/ask question` works like a mention; a bare `/ask` replying to a message asks about it."""
    admitted = _admitted(update, context)
    if admitted is None:
        return
    services, message = admitted
    question = (message.text or message.caption or "").partition(" ")[2].strip()
    if not question and message.reply_to_message is None:
        services.dispatcher.tell(reply_target(message), ASK_USAGE)
        return
    services.admission.take(message, text_override=question)


async def on_continue(update: Update, context: BotContext) -> None:
    """`/continue`: the model goes on from where its newest answer stopped, in a new message
    (as the Continue button under an answer cut at the length limit does)."""
    admitted = _admitted(update, context)
    if admitted is None:
        return
    services, message = admitted
    if await services.pipeline.latest_answer(conversation_key(message)) is None:
        services.dispatcher.tell(reply_target(message), NOTHING_TO_CONTINUE)
        return
    services.admission.take(message, text_override=CONTINUE_PROMPT)


COMMAND_HANDLERS = [
    _lane_command("start", cmd_start),
    _lane_command("help", cmd_help),
    _lane_command("new", cmd_new, on_arrival=True),
    _lane_command("retry", cmd_retry),
    _lane_command("system", cmd_system),
    _lane_command("stats", cmd_stats, admin_only_for_bot=True),
    _lane_command("export", cmd_export, admin_only_for_bot=True),
    CommandHandler("stop", on_stop),
    CommandHandler("ask", on_ask),
    CommandHandler("continue", on_continue),
    *SPEECH_HANDLERS,
]
