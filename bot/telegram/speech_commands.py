"""/transcribe and /translate: Phi-4's speech instructions as turns about the message replied to."""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import CommandHandler

from bot import metrics
from bot.shared import Sentence
from bot.telegram.context import BotContext
from bot.telegram.services import BotServices
from bot.telegram.speech import (
    TRANSCRIBE,
    TRANSLATE_AUDIO,
    TRANSLATE_TEXT,
    command_turn,
    language_name,
    sound_of,
)
from bot.telegram.triggers import language_of, reply_target

TRANSCRIBE_USAGE = Sentence(
    "Reply with /transcribe to a voice note, audio file, video or video note, and I write "
    "down what is said."
)
TRANSLATE_USAGE = Sentence(
    "Reply with /translate <language> to a voice note, audio file, video, video note or "
    "text, and I translate it (into your language if you name none)."
)
SPEECH_MENU = [
    ("transcribe", Sentence("Write down a voice note (reply to it)")),
    ("translate", Sentence("Translate a voice note or text (reply to it)")),
]


def _admitted(update: Update, context: BotContext) -> tuple[BotServices, Message] | None:
    message = update.message
    if message is None:
        return None
    metrics.count_update("command")
    services = context.services
    if not services.admission.admit(message):
        return None
    return services, message


async def on_transcribe(update: Update, context: BotContext) -> None:
    """Reply /transcribe to something with sound: the model writes down what is said."""
    admitted = _admitted(update, context)
    if admitted is None:
        return
    services, message = admitted
    replied = message.reply_to_message
    sound = sound_of(replied) if replied is not None else None
    if replied is None or sound is None:
        services.dispatcher.tell(reply_target(message), TRANSCRIBE_USAGE)
        return
    limit = services.settings.max_input_chars
    services.admission.submit_turn(
        command_turn(message, TRANSCRIBE, sound=sound, max_input_chars=limit), replied
    )


async def on_translate(update: Update, context: BotContext) -> None:
    """Reply /translate [language] to sound or text: the model translates it."""
    admitted = _admitted(update, context)
    if admitted is None:
        return
    services, message = admitted
    replied = message.reply_to_message
    asked = (message.text or "").partition(" ")[2]
    language = language_name(asked, language_of(message))
    limit = services.settings.max_input_chars
    sound = sound_of(replied) if replied is not None else None
    quoted = (replied.text or replied.caption or "") if replied is not None else ""
    if replied is not None and sound is not None:
        instruction = TRANSLATE_AUDIO.format(language=language)
        turn = command_turn(message, instruction, sound=sound, max_input_chars=limit)
        services.admission.submit_turn(turn, replied)
    elif quoted:
        text = f"{TRANSLATE_TEXT.format(language=language)}\n\n{quoted}"
        services.admission.submit_turn(command_turn(message, text, max_input_chars=limit))
    else:
        services.dispatcher.tell(reply_target(message), TRANSLATE_USAGE)


SPEECH_HANDLERS = [
    CommandHandler("transcribe", on_transcribe),
    CommandHandler("translate", on_translate),
]
